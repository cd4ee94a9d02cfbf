"""Data layouts shared by datasets, models and evaluation: joint sets and skeletons.

This package imports nothing else of unspat_mm, so every layer can depend on it.
"""
