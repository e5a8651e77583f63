"""sim/containers"""
