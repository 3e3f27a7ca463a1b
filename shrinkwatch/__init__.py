"""Shrinkwatch core: settings, wire contracts, site configuration and the command line."""

__version__ = "0.1.0"
