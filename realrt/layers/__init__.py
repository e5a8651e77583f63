"""realrt/layers"""
