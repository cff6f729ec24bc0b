"""Shared test material: real clips made here, development keys, the reference fixtures."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clipproof.demo import moving_scene
from clipproof.media import write_mp4
from clipproof.provenance.keys import init_dev_keys
from clipproof.provenance.sign import sign

# Signed, broken and unsigned files from the reference implementation (c2pa-rs, MIT: see its
# LICENSE-MIT and README beside them), copied in so a clean clone tests alone.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "c2pa"
CERTS = FIXTURES / "certs"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def data_home(tmp_path_factory):
    """One user data folder for the session: the default manifest store lives there, so a clip
    signed by a session fixture is found by every test's verify."""
    return tmp_path_factory.mktemp("data-home")


@pytest.fixture(scope="session", autouse=True)
def _own_temporary_folder():
    """A temporary folder of this test process's own, for the code under test and the processes
    it starts: `make test` runs two test processes, and a check that nothing is left in the
    temporary folder (the service's uploads) must not see the other one's files in flight.
    Directly in the system's folder, not under pytest's: Ray keeps its sockets in it, and a
    socket's path may not pass 107 bytes."""
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="cp-tests-")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", folder)
        mp.setattr(tempfile, "tempdir", folder)
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch, tmp_path_factory, data_home):
    """Tests see no trust anchors but those they give: no user config, no environment, and
    never the user's own manifest store."""
    monkeypatch.delenv("CLIPPROOF_TRUST_ANCHORS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.delenv("CLIPPROOF_CONFIG", raising=False)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    return init_dev_keys(tmp_path_factory.mktemp("keys") / "dev")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory):
    return init_dev_keys(tmp_path_factory.mktemp("keys") / "other", common_name="someone else")


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A 2-second H.264 clip, never signed."""
    return write_mp4(moving_scene(24, 128, 96), tmp_path_factory.mktemp("clips") / "clip.mp4", fps=12)


@pytest.fixture(scope="session")
def ai_clip(clip, keys, tmp_path_factory) -> Path:
    return sign(clip, tmp_path_factory.mktemp("signed") / "ai.mp4", key=keys.key, cert=keys.chain,
                source_type="trainedAlgorithmicMedia")


@pytest.fixture(scope="session")
def capture_clip(clip, keys, tmp_path_factory) -> Path:
    return sign(clip, tmp_path_factory.mktemp("signed") / "capture.mp4", key=keys.key, cert=keys.chain,
                source_type="digitalCapture")


def write_phone_clip(frames, path: Path, rotation: int, fps: int = 12, audio: bool = False) -> Path:
    """Frames (T, H, W, 3) stored as they are, with a display rotation (counter-clockwise degrees)
    as a phone writes a portrait clip; with ``audio``, a silent audio track comes first."""
    import av
    import numpy as np
    with av.open(str(path), "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=8000, layout="mono") if audio else None
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(rotation)
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame, np.uint8), format="rgb24")))
        out.mux(stream.encode(None))
        if sound is not None:
            silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            silence.sample_rate = 8000
            out.mux(sound.encode(silence))
            out.mux(sound.encode(None))
    return path


def index_first(src: Path, dst: Path) -> Path:
    """``src`` remuxed with its index (``moov``) ahead of the pictures, as web encodes and
    streaming exports write it: a file cut short there still has its frames' index."""
    import av
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


def run_process(*args: str, env: dict | None = None, cwd: Path | None = None,
                input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a console script of this environment (``verify`` or ``clipproof``) as a user does:
    a new process (torch imported afresh: seconds). One end-to-end check per command uses this."""
    full_env = {**os.environ, **(env or {})}
    out = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, env=full_env, cwd=cwd,
                         timeout=300, input=input)
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(), out.stderr.decode())


def run_cli(*args: str, env: dict | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``verify ...`` or ``clipproof ...`` in this process (``cli.main``), with the exit code,
    stdout and stderr a process would give; ``input`` is standard input."""
    from clipproof import cli
    entry = {"verify": cli.verify_main, "clipproof": cli.main}[args[0]]
    stdout, stderr = io.StringIO(), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO(input or b""))
    saved_env = dict(os.environ)
    os.environ.update(env or {})
    saved_stdin, sys.stdin = sys.stdin, stdin
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = entry(list(args[1:]))
            except SystemExit as e:        # argparse: --help, --version, usage errors
                code = e.code if isinstance(e.code, int) else 0
    finally:
        sys.stdin = saved_stdin
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(list(args), code, stdout.getvalue(), stderr.getvalue())


# ---------------------------------------------------------------------------------------------
# A tiny generator, trained once per session on a tiny corpus of animated photographs
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    from clipproof.datasets.build import build_corpus
    from clipproof.datasets.recipe import recipe_from_dict
    out = tmp_path_factory.mktemp("gen") / "corpus"
    recipe = recipe_from_dict({"seed": 0, "clip": {"frames": 8, "width": 16, "height": 16, "windows": 4},
                               "real": [{"kind": "stills", "names": ["coffee", "astronaut", "rocket", "brick",
                                                                      "chelsea", "moon"]}]})
    build_corpus(recipe, out, show_progress=False, log=lambda m: None)
    return out


def fixed_batch(corpus):
    from clipproof.datasets.dataset import ClipDataset
    ds = ClipDataset(corpus, "train")
    ds.records = ds.records[:8]        # one batch, the same every step
    return ds


@pytest.fixture(scope="session")
def trained(tiny_corpus, tmp_path_factory):
    """(checkpoint folder, TrainResult) of the `tiny` config after 60 steps on a fixed batch."""
    import torch

    from clipproof.generator.configs import get_config
    from clipproof.generator.settings import TrainSettings
    from clipproof.generator.train import train
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("gen") / "tiny"
    result = train(fixed_batch(tiny_corpus), lambda r: r.group, get_config("tiny"), out,
                   TrainSettings(steps=60, batch_size=8, lr=2e-3, warmup=5, checkpoint_every=30,
                                 ema_decay=0.9), progress=False, log=lambda m: None)
    return out, result


# ---------------------------------------------------------------------------------------------
# DDP: a training function run on 2 processes (gloo on CPU), as torchrun would run it
# ---------------------------------------------------------------------------------------------

def _ddp_entry(rank: int, world: int, port: int, target: str, kwargs: dict) -> None:
    import importlib

    import torch
    import torch.distributed as dist
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    module, name = target.split(":")
    try:
        getattr(importlib.import_module(module), name)(**kwargs)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_ddp(target: str, world: int = 2, **kwargs) -> None:
    """Run ``module:function(**kwargs)`` on ``world`` processes that form one DDP job on the
    loopback interface (each sees RANK, WORLD_SIZE and MASTER_* as under torchrun)."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_entry, args=(world, port, target, kwargs), nprocs=world, join=True)


# Tests that use these fixtures train a model (or build a corpus with one): `slow`, left out of
# `make test-fast`. Tests that start new processes say so with their own mark.
_TRAINING_FIXTURES = {"trained", "mixed_corpus", "detector"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    """A TCP port nobody listens on (now) on loopback."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app, port: int | None = None):
    """An ASGI app served by uvicorn on loopback in a thread; yields its base URL."""
    import threading
    import time

    import uvicorn
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
