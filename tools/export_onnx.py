"""Export detector weights to ONNX for ``verify``.

    python -m tools.export_onnx WEIGHTS_DIR [--quantize CORPUS]

Writes ``model.onnx`` beside the tensors, stamped with their SHA-256 (``verify`` uses the export
only while it matches them), after checking that ONNX Runtime's logits match torch's on random
clips of 1 and 5 segments (max difference ≤ 1e-4), and so do the embeddings the
out-of-distribution check reads. torch's exporter (torch.export + onnxscript)
is needed here only; ``verify`` needs onnxruntime alone.

``--quantize CORPUS`` then makes the convolutions int8 (ONNX Runtime's static quantization, QDQ,
per-channel weights), their activation ranges calibrated on clips of the corpus's training
split; the convolutions are nine tenths of the model's time, and int8 halves it. An int8
export is kept only if its calibrated logits (logit / temperature, what the thresholds are
applied to) on the corpus's validation clips stay within ``QUANTIZED_MEAN`` (mean) and
``QUANTIZED_MAX`` (largest) of the float export's. ``QUANTIZATIONS`` are tried in turn, the
fastest first, and the first within the bounds is kept; its metadata says which
(``ONNX_QUANTIZED_KEY``). A model that sees fine residuals (``st-attention-npr``: most values
near zero, a few large) loses them in 256 levels spread over the extremes: its ranges are
taken at a percentile and its first convolutions stay float. Its embeddings move as well, so
it gets an out-of-distribution check of its own, fitted as training fits the float one but on
the int8 export's embeddings (``ood.int8.safetensors``, written first: ``verify`` uses an int8
export only beside it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from clipproof.atomic import atomic_output
from clipproof.detector import ood
from clipproof.detector.weights import (ONNX_FILE, ONNX_QUANTIZED_KEY, ONNX_SOURCE_KEY, load_weights, read_info,
                                        tensors_sha256)

MAX_SEGMENTS_EXPORTED = 64
TOLERANCE = 1e-4
QUANTIZED_MEAN = 0.1          # calibrated logits: mean |int8 - float| on validation clips, at most
QUANTIZED_MAX = 0.5           # and the largest
CALIBRATION_CLIPS = 256
# (leading convolutions left in float, activation range): what quantize() tries, in this order.
QUANTIZATIONS = ((0, "MinMax"), (0, "Percentile"), (1, "Percentile"), (2, "Percentile"), (3, "Percentile"))


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


def quantize(weights: str | Path, corpus: str | Path, clips: int = CALIBRATION_CLIPS) -> tuple[float, float, str]:
    """Replace ``WEIGHTS/model.onnx`` (a float export) by its int8 form, calibrated on up to
    ``clips`` training clips of ``corpus``; return the (mean, largest) difference of calibrated
    logits from the float export's on up to as many validation clips, and what was made int8.
    Past the bounds for every one of ``QUANTIZATIONS`` the float export stays. Calibrated,
    because the same rounding is a larger change of the verdict for a model whose logits are
    spread narrowly (temperature 0.67) than for one whose are spread widely (a small test
    model: 12)."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    weights = Path(weights)
    calibration, validation = _rows(corpus, "train", clips), _rows(corpus, "val", clips)

    class _Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"clips": calibration[i:i + 16]} for i in range(0, len(calibration), 16)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        # The exporter's graph has shapes the symbolic pass cannot follow; ONNX's own suffices.
        quant_pre_process(str(weights / ONNX_FILE), str(prepared), skip_symbolic_shape=True)
        convolutions = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
        float_logits = onnxruntime.InferenceSession(str(weights / ONNX_FILE), providers=["CPUExecutionProvider"]) \
            .run(["logits"], {"clips": validation})[0]
        temperature = read_info(weights)[1].temperature
        tried = []
        for kept_float, method in QUANTIZATIONS:
            quantize_static(str(prepared), str(quantized), _Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                            nodes_to_exclude=convolutions[:kept_float], calibrate_method=CalibrationMethod[method])
            int8 = _Session(quantized)
            gap = np.abs(int8.session.run(["logits"], {"clips": validation})[0] - float_logits) / temperature
            mean, largest = float(gap.mean()), float(gap.max())
            what = (f"int8 convolutions{f' but the first {kept_float} (float)' if kept_float else ''}, activation "
                    f"ranges {'at the extremes' if method == 'MinMax' else 'at a percentile'}, calibrated on "
                    f"{len(calibration)} training clips")
            tried.append(f"{what}: {mean:.2g} on average, {largest:.2g} at most")
            if mean <= QUANTIZED_MEAN and largest <= QUANTIZED_MAX:
                break
        else:
            raise SystemExit(f"int8 calibrated logits differ from the float export's by more than the bounds "
                             f"({QUANTIZED_MEAN} on average, {QUANTIZED_MAX} at most) — {'; '.join(tried)}: "
                             "the float export is kept")
        graph = onnx.load(str(quantized))
        del graph.metadata_props[:]
        for key, value in ((ONNX_SOURCE_KEY, tensors_sha256(weights)), (ONNX_QUANTIZED_KEY, what)):
            meta = graph.metadata_props.add()
            meta.key, meta.value = key, value
        onnx.save(graph, str(quantized))    # metadata only: the session checked above scores as it does
        from tools.fit_ood import fit_for
        fit_for(weights, Path(corpus), int8, ood.INT8_OOD_FILE)
        with atomic_output(weights / ONNX_FILE) as out:
            out.write_bytes(quantized.read_bytes())
    return mean, largest, what


class _Session(torch.nn.Module):
    """An ONNX export behind the torch model's interface (``predict_logits`` calls it on
    batches and reads ``logits`` or ``embedding``)."""

    def __init__(self, path: Path):
        import onnxruntime
        super().__init__()
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def forward(self, clips: torch.Tensor) -> dict:
        logits, embedding = self.session.run(["logits", "embedding"], {"clips": clips.numpy()})
        return {"logits": torch.from_numpy(logits), "embedding": torch.from_numpy(embedding)}


def _rows(corpus: str | Path, split: str, n: int) -> np.ndarray:
    """Up to ``n`` clips of a corpus split, drawn evenly, as model rows (N, T, 3, H, W)."""
    from clipproof.datasets.dataset import ClipDataset
    clips = ClipDataset(corpus, split)
    picked = np.linspace(0, len(clips) - 1, min(n, len(clips))).round().astype(int)
    return np.stack([clips[int(i)][0].numpy() for i in picked]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.export_onnx", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, help="detector weights folder")
    p.add_argument("--quantize", type=Path, metavar="CORPUS",
                   help="make the convolutions int8, calibrated on this corpus's training clips")
    args = p.parse_args(argv)
    path, worst = export(args.weights)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, logits match torch's within {worst:.1g}")
    if args.quantize:
        mean, largest, what = quantize(args.weights, args.quantize)
        print(f"{path}: {what}, {path.stat().st_size / 1e6:.1f} MB; calibrated logits on validation clips within "
              f"{mean:.2g} of the float export's on average, {largest:.2g} at most")
    return 0


if __name__ == "__main__":
    sys.exit(main())
