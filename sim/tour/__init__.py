"""sim/tour"""
