"""What clipproof will spend on one input, and where it refuses.

Uploads are untrusted: a few megabytes can declare a 16000×16000 picture, a million boxes or
three million frames behind one keyframe. These bounds keep one such file from stalling a batch
or eating its memory; each is far beyond what real footage needs. The README lists them.
"""
from __future__ import annotations

# Frame size: beyond 16K on a side, or more pixels than 8K×8K, a "video" is a decompression
# bomb, not footage. Decoders are told the pixel limit, so they refuse before allocating.
MAX_SIDE = 16384
MAX_PIXELS = 8192 * 8192

# Container structure, counted before any parser sees the file: ISO BMFF boxes (top level and
# inside containers), RIFF and PNG chunks, GIF blocks. The C2PA reader's time grows with the
# square of the box count (4 s at 25,000); an hour of fragmented MP4 has about 13,000.
MAX_BOXES = 20_000

# Decoding for the detector, per file: a clip that needs more (a frame-count bomb: millions
# of frames behind one keyframe) is not scored, and the report says why.
MAX_DECODED_FRAMES = 20_000
MAX_DECODE_SECONDS = 30.0

# Files decoded at once in one process (each large frame holds the decoder's reference frames):
# more workers verify credentials in parallel but queue for decoding.
MAX_CONCURRENT_DECODES = 2

# Frames of a stream without a duration in its header counted by reading packets (about an
# hour at 30 fps; a longer headerless stream is reported as that long).
MAX_COUNTED_PACKETS = 100_000

# Text taken from a file (signer names, claim generators, file names, parser messages) shown in
# one report line; the rest is cut with a marker.
MAX_FIELD_CHARS = 200
