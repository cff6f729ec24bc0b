"""A detector weights folder: ``model.safetensors`` (the tensors), ``config.json`` (model name and
arguments, clip shape, how it was trained) and ``calibration.json`` (temperature, thresholds).

Loading for inference reads these three files and builds the model through the registry; it
never imports the training code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from clipproof.atomic import atomic_output
from clipproof.detector.calibration import Calibration
from clipproof.detector.registry import create_model
from clipproof.errors import InputMissingError, loading_weights

MODEL_FILE, CONFIG_FILE, CALIBRATION_FILE = "model.safetensors", "config.json", "calibration.json"


def load_weights(folder: str | os.PathLike) -> tuple[torch.nn.Module, dict, Calibration]:
    """(model in eval mode, config dict, Calibration) from a weights folder."""
    folder = Path(folder)
    for name in (MODEL_FILE, CONFIG_FILE, CALIBRATION_FILE):
        if not (folder / name).is_file():
            raise InputMissingError(f"not detector weights (no {name})", path=folder)
    with loading_weights(folder, "detector"):
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        model = create_model(config["model"], **config["kwargs"])
        model.load_state_dict(load_file(str(folder / MODEL_FILE)))
        calibration = Calibration.load(folder / CALIBRATION_FILE)
    model.eval()
    return model, config, calibration


def save_tensors(model: torch.nn.Module, folder: Path) -> None:
    """The model's tensors as ``model.safetensors``, atomically."""
    with atomic_output(folder / MODEL_FILE) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))


def save_config(config: dict, calibration: Calibration, folder: Path) -> None:
    """``calibration.json`` and ``config.json``, atomically (the config last: its presence says
    the folder is complete)."""
    calibration.save(folder / CALIBRATION_FILE)
    with atomic_output(folder / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
