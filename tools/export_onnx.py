"""Export detector weights to ONNX for ``verify`` (python -m tools.export_onnx WEIGHTS_DIR).

Writes ``model.onnx`` beside the tensors, stamped with their SHA-256 (``verify`` uses the export
only while it matches them), after checking that ONNX Runtime's logits match torch's on random
clips of 1 and 5 segments (max difference ≤ 1e-4), and so do the embeddings the
out-of-distribution check reads. torch's exporter (torch.export + onnxscript)
is needed here only; ``verify`` needs onnxruntime alone.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from clipproof.atomic import atomic_output
from clipproof.detector.weights import ONNX_FILE, ONNX_SOURCE_KEY, load_weights, tensors_sha256

MAX_SEGMENTS_EXPORTED = 64
TOLERANCE = 1e-4


class _Outputs(torch.nn.Module):
    """What ONNX Runtime returns: the detector's ``logits`` and ``embedding`` (for the
    out-of-distribution check)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(clips)
        return out["logits"], out["embedding"]


def export(weights: str | Path) -> tuple[Path, float]:
    """Write ``WEIGHTS/model.onnx``; return its path and the largest logit difference measured."""
    import onnx
    import onnxruntime

    weights = Path(weights)
    model, config, _ = load_weights(weights)
    net = _Outputs(model).eval()
    example = torch.zeros(2, int(config["frames"]), 3, *reversed(config["size"]))
    segments = torch.export.Dim("segments", min=1, max=MAX_SEGMENTS_EXPORTED)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / ONNX_FILE
        torch.onnx.export(net, (example,), str(raw), input_names=["clips"], output_names=["logits", "embedding"],
                          dynamic_shapes=({0: segments},), dynamo=True, external_data=False, verbose=False)
        graph = onnx.load(str(raw))
    meta = graph.metadata_props.add()
    meta.key, meta.value = ONNX_SOURCE_KEY, tensors_sha256(weights)
    with atomic_output(weights / ONNX_FILE) as tmp:
        onnx.save(graph, str(tmp))
    session = onnxruntime.InferenceSession(str(weights / ONNX_FILE), providers=["CPUExecutionProvider"])
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for n in (1, 5):
        clips = torch.rand(n, *example.shape[1:], generator=generator) * 2 - 1
        with torch.inference_mode():
            want = [t.numpy() for t in net(clips)]
        got = session.run(None, {"clips": clips.numpy()})
        worst = max(worst, *(float(np.abs(w - g).max()) for w, g in zip(want, got)))
    if worst > TOLERANCE:
        (weights / ONNX_FILE).unlink()
        raise SystemExit(f"ONNX logits differ from torch's by {worst:.2g} (> {TOLERANCE}): export removed")
    return weights / ONNX_FILE, worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.export_onnx", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, help="detector weights folder")
    args = p.parse_args(argv)
    path, worst = export(args.weights)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, logits match torch's within {worst:.1g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
