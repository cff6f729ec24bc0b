"""A detector weights folder, saved and loaded as the generator's models are (diffusers'
``save_pretrained`` / ``from_pretrained``):

- ``config.json`` + ``diffusion_pytorch_model.safetensors``: the model (its constructor's
  arguments and its tensors), loadable with ``TemporalAttentionDetector.from_pretrained(folder)``;
- ``training.json``: the registry name, the clip shape it scores, how it was trained;
- ``calibration.json``: temperature and decision thresholds;
- ``model.onnx`` (optional, written by ``python -m tools.export_onnx``): the same model for ONNX
  Runtime, stamped with the SHA-256 of the tensors it was exported from. ``verify`` runs it when
  it matches the tensors beside it, and then never imports torch (a second instead of four).

Loading for inference reads these files; it never imports the training code.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from clipproof.atomic import atomic_output, default_file_mode
from clipproof.detector.calibration import Calibration
from clipproof.digest import sha256_file
from clipproof.errors import InputMissingError, loading_weights

if TYPE_CHECKING:
    import torch

MODEL_CONFIG, MODEL_TENSORS = "config.json", "diffusion_pytorch_model.safetensors"
TRAINING_FILE, CALIBRATION_FILE = "training.json", "calibration.json"
FILES = (MODEL_CONFIG, MODEL_TENSORS, TRAINING_FILE, CALIBRATION_FILE)
ONNX_FILE = "model.onnx"
# The ONNX model's metadata key holding the SHA-256 of the tensors it was exported from.
ONNX_SOURCE_KEY = "clipproof.source_sha256"
ONNX_QUANTIZED_KEY = "clipproof.quantized"     # present when the export's convolutions are int8


def segment_crops(info: dict) -> int:
    """Crops a segment averages, from ``training.json`` (or the ``clip_input`` that goes into it):
    K for a detector of native-resolution crops, 1 for one that sees whole frames scaled down."""
    return int(info.get("crops", 1)) if info.get("input") == "native" else 1


def load_model(folder: str | os.PathLike, name: str) -> torch.nn.Module:
    """The registered model ``name`` saved in ``folder``, in eval mode. Raises ValueError when
    the folder holds another model (its class, or tensors that do not fit)."""
    from diffusers.utils import logging as diffusers_logging

    from clipproof.detector.registry import model_class
    folder = Path(folder)
    cls = model_class(name)
    saved = json.loads((folder / MODEL_CONFIG).read_text(encoding="utf-8")).get("_class_name")
    if saved != cls.__name__:
        raise ValueError(f"the model files hold a {saved}, not the {cls.__name__} ({name}) named in {TRAINING_FILE}")
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()      # our own check below says what does not fit
    try:
        model, info = cls.from_pretrained(str(folder), low_cpu_mem_usage=False, output_loading_info=True)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    misfits = {k: v for k, v in info.items() if v}
    if misfits:
        raise ValueError(f"tensors do not fit the model: {', '.join(f'{k} {len(v)}' for k, v in misfits.items())}")
    return model.eval()


def read_info(folder: str | os.PathLike) -> tuple[dict, Calibration]:
    """(training info dict, Calibration) of a weights folder: JSON only, no torch."""
    folder = Path(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise InputMissingError(f"not detector weights (no {name})", path=folder)
    with loading_weights(folder, "detector"):
        info = json.loads((folder / TRAINING_FILE).read_text(encoding="utf-8"))
        calibration = Calibration.load(folder / CALIBRATION_FILE)
    return info, calibration


def load_weights(folder: str | os.PathLike) -> tuple[torch.nn.Module, dict, Calibration]:
    """(model in eval mode, training info dict, Calibration) from a weights folder."""
    info, calibration = read_info(folder)
    with loading_weights(folder, "detector"):
        model = load_model(folder, info["model"])
    return model, info, calibration


def tensors_sha256(folder: str | os.PathLike) -> str:
    return sha256_file(Path(folder) / MODEL_TENSORS)


def onnx_session(folder: str | os.PathLike):
    """An ONNX Runtime session of the folder's ``model.onnx``, or None: no such file, no
    onnxruntime installed, a file exported from other tensors than those beside it (a stale
    export after retraining must never score in their name), or an int8 export without its own
    out-of-distribution check (the float model's would misplace its clips: ``ood``)."""
    path = Path(folder) / ONNX_FILE
    if not path.is_file():
        return None
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # One thread: the model is small and its calls short, and ONNX Runtime's pool (one thread a
    # core, spinning between calls) took CPU from the decoder and the watermark search beside
    # it. Whole `verify` processes on 2 cores, measured: a 10 s 1080p clip at a phone's bit rate
    # 2.86-2.98 s and 5.3 s of CPU with the pool, 2.58-2.66 s and 4.6 s with one thread; a 2.5 s
    # 720p clip 0.98-1.13 s / 1.5 s against 0.90-1.02 s / 1.3 s.
    options.intra_op_num_threads = 1
    with loading_weights(folder, "detector (ONNX)"):
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    from clipproof.detector.ood import INT8_OOD_FILE
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get(ONNX_SOURCE_KEY) != tensors_sha256(folder):
        return None
    return None if ONNX_QUANTIZED_KEY in meta and not (Path(folder) / INT8_OOD_FILE).is_file() else session


def save_model(model, folder: Path) -> None:
    """``model.save_pretrained`` into ``folder``, each file replaced atomically (written beside,
    then renamed), so a crash never leaves half a tensor file where the best weights were."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".saving-") as tmp:
        model.save_pretrained(tmp)
        for name in (MODEL_TENSORS, MODEL_CONFIG):
            os.chmod(Path(tmp) / name, default_file_mode())
            os.replace(Path(tmp) / name, folder / name)


def save_training_info(info: dict, calibration: Calibration, folder: Path) -> None:
    """``calibration.json`` and ``training.json``, atomically (training info last: its presence
    says the folder is complete)."""
    calibration.save(folder / CALIBRATION_FILE)
    with atomic_output(folder / TRAINING_FILE) as tmp:
        tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
