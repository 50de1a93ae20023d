"""kequireg.evaluation"""
