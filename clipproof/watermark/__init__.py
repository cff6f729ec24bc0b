"""An invisible watermark in the pixels that leads back to a clip's manifest (a C2PA soft binding).

``embed`` adds a keyed pattern to every frame's luma; ``detect`` finds it again in a copy whose
manifest was stripped, re-encoded, scaled, cropped, re-timed or trimmed, and returns the 64-bit
payload that names the manifest in a store (``clipproof.provenance.store``). It needs numpy and
PyAV only: ``verify`` never imports torch or scipy for it (``filters.py`` says why).

    payload.py   64 bits ⇄ 172 coded bits (CRC-16 for detection, BCH for correction)
    pattern.py   the keyed tile: sync chips and data chips, and its frame-sized rendering
    filters.py   the Gaussian and box filters both sides smooth with
    embedding.py frames in, marked frames out
    framing.py   the picture inside bars, caption bands or a canvas, searched alone
    detection.py a video in, a Detection out
"""
from clipproof.watermark.detection import Detection, detect, detect_frames
from clipproof.watermark.embedding import Embedder, embed_frames
from clipproof.watermark.payload import ALGORITHM, PAYLOAD_BITS, new_payload

__all__ = ["ALGORITHM", "PAYLOAD_BITS", "Detection", "Embedder", "detect", "detect_frames", "embed_frames", "new_payload"]
