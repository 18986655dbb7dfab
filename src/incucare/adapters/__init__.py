"""Adapters: storage, geocoding, messaging; everything that talks to the outside world."""
