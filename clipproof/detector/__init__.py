"""The detector: a spatiotemporal classifier of real vs generated video, its training, the
standard evaluation, calibration, and inference inside `verify`."""
