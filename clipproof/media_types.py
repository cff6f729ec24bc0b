"""The file names a folder walk takes for media (``verify DIR``, ``detector eval --folder``,
``datasets train-autoencoder``): kept apart from ``media`` so that knowing a name costs no
PyAV import.

Anything else inside a folder is skipped with a note; a file named explicitly is always
verified, whatever its name.
"""
# Still pictures (an animated GIF is read as the video it is, so it is not among them).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".tif", ".tiff"}
# Camcorders write AVCHD as .mts/.m2ts, broadcast archives MXF.
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
                  ".m4s", ".3gp", ".3g2", ".flv", ".wmv", ".ogv", ".mxf", ".gif"}
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
