"""kequireg.models"""
