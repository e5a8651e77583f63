"""sim/layers"""
