"""sim/images"""
