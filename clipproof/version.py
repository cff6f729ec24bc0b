"""The package version, in one place (claim generator, software agent, records)."""
__version__ = "0.1.0"
