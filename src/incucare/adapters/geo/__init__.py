"""Offline geocoding of Chinese addresses."""
