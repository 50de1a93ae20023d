"""kequireg.data"""
