"""kequireg.training"""
