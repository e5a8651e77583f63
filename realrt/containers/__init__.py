"""realrt/containers"""
