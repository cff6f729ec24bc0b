"""Detector models, one file each; each registers its constructors with the registry."""
