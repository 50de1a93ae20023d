"""kequireg.experiments"""
