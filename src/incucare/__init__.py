"""incucare: after-sales service platform for laboratory CO2 incubators."""

__version__ = "0.1.0"
