"""A detector weights folder, saved and loaded as the generator's models are (diffusers'
``save_pretrained`` / ``from_pretrained``):

- ``config.json`` + ``diffusion_pytorch_model.safetensors``: the model (its constructor's
  arguments and its tensors), loadable with ``TemporalAttentionDetector.from_pretrained(folder)``;
- ``training.json``: the registry name, the clip shape it scores, how it was trained;
- ``calibration.json``: temperature and decision thresholds.

Loading for inference reads these files; it never imports the training code.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from clipproof.atomic import atomic_output, default_file_mode
from clipproof.detector.calibration import Calibration
from clipproof.detector.registry import model_class
from clipproof.errors import InputMissingError, loading_weights

MODEL_CONFIG, MODEL_TENSORS = "config.json", "diffusion_pytorch_model.safetensors"
TRAINING_FILE, CALIBRATION_FILE = "training.json", "calibration.json"
FILES = (MODEL_CONFIG, MODEL_TENSORS, TRAINING_FILE, CALIBRATION_FILE)


def load_model(folder: str | os.PathLike, name: str) -> torch.nn.Module:
    """The registered model ``name`` saved in ``folder``, in eval mode. Raises ValueError when
    the folder holds another model (its class, or tensors that do not fit)."""
    from diffusers.utils import logging as diffusers_logging
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


def load_weights(folder: str | os.PathLike) -> tuple[torch.nn.Module, dict, Calibration]:
    """(model in eval mode, training info dict, Calibration) from a weights folder."""
    folder = Path(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise InputMissingError(f"not detector weights (no {name})", path=folder)
    with loading_weights(folder, "detector"):
        info = json.loads((folder / TRAINING_FILE).read_text(encoding="utf-8"))
        model = load_model(folder, info["model"])
        calibration = Calibration.load(folder / CALIBRATION_FILE)
    return model, info, calibration


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
