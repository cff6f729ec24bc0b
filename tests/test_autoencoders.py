"""Autoencoders trained here on real footage: their reconstructions are the detector's
decoder-trace examples (issue 14). Tiny configs, the real code path."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clipproof.datasets.autoencoders import (AUTOENCODERS, AutoencoderSettings, load_autoencoder, reconstruct,
                                             train_autoencoder)
from clipproof.demo import moving_scene
from clipproof.errors import InputMissingError, UsageError
from clipproof.media import read_frames, write_mp4
from conftest import run_cli


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("footage")
    for seed in range(2):        # 48 frames: the held-back fifth holds a clip of CogVideoX's 9
        write_mp4(moving_scene(48, 48, 40, seed=seed), folder / f"cam{seed}.mp4", fps=10)
    return folder


@pytest.mark.slow
def test_train_save_load_and_reconstruct_any_size(footage, tmp_path):
    settings = AutoencoderSettings(steps=3, batch_size=2, crop=16, frames=3, checkpoint_every=3)
    info = train_autoencoder("tiny-kl", sorted(footage.glob("*.mp4")), tmp_path / "ae", settings, progress=False,
                             log=lambda m: None)
    assert info["steps"] == 3 and 0 < info["val_psnr_db"] < 60 and info["footage"] == ["cam0.mp4", "cam1.mp4"]
    assert json.loads((tmp_path / "ae" / "autoencoder.json").read_text())["autoencoder"] == "tiny-kl"
    ae, spec = load_autoencoder(tmp_path / "ae")
    frames = moving_scene(5, 37, 23)                         # sizes the architecture does not divide
    out = reconstruct(ae, spec, frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frames)                   # it went through the decoder
    again = train_autoencoder("tiny-kl", sorted(footage.glob("*.mp4")), tmp_path / "ae",
                              AutoencoderSettings(steps=4, batch_size=2, crop=16, frames=3, checkpoint_every=2),
                              progress=False, log=lambda m: None)
    assert again["steps"] == 4                               # resumed from step 3, one more


def test_a_video_that_cannot_be_read_is_left_out(footage, tmp_path):
    """One corrupt file in a folder of footage stopped the whole run; now it is left out with a
    note, as `datasets build` does, and only a folder of nothing readable is refused."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\0\0\x18ftypisom" + b"x" * 64)
    notes = []
    settings = AutoencoderSettings(steps=1, batch_size=1, crop=16, frames=1, checkpoint_every=1)
    info = train_autoencoder("tiny-kl", [junk, *sorted(footage.glob("*.mp4"))], tmp_path / "ae", settings,
                             progress=False, log=notes.append)
    assert info["footage"] == ["cam0.mp4", "cam1.mp4"] and any("skipping" in n and "junk.mp4" in n for n in notes)
    with pytest.raises(UsageError, match="none of the 1 videos given can be read"):
        train_autoencoder("tiny-kl", [junk], tmp_path / "none", settings, progress=False, log=notes.append)
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["wan", "cogvideox", "hunyuan-video"])
def test_video_vaes_of_current_generators_train_and_reconstruct(arch, footage, tmp_path):
    spec = AUTOENCODERS[arch]
    settings = AutoencoderSettings(steps=1, batch_size=1, crop=spec.spatial * 2, frames=1 + spec.temporal,
                                   checkpoint_every=1)
    info = train_autoencoder(arch, sorted(footage.glob("*.mp4")), tmp_path / "ae", settings, progress=False,
                             log=lambda m: None)
    assert info["steps"] == 1 and 0 < info["val_psnr_db"] < 60
    ae, loaded = load_autoencoder(tmp_path / "ae")
    assert loaded == spec and type(ae).__name__ == type(spec.make()).__name__
    for frames in (1, 6):                                    # counts and sizes the architecture does not divide
        clip = moving_scene(frames, 37, 23)
        assert reconstruct(ae, spec, clip).shape == clip.shape


def test_shapes_the_architecture_cannot_take_are_refused(footage, tmp_path):
    assert {"kl-frame", "ltx"} <= set(AUTOENCODERS)
    with pytest.raises(UsageError, match="1 \\+ a multiple of 8 frames"):
        train_autoencoder("ltx", sorted(footage.glob("*.mp4")), tmp_path / "x", AutoencoderSettings(frames=4))
    with pytest.raises(UsageError, match="unknown autoencoder"):
        train_autoencoder("nope", [], tmp_path / "y")


@pytest.mark.slow
def test_command_line(footage, tmp_path):
    result = run_cli("clipproof", "datasets", "train-autoencoder", str(footage), "--arch", "tiny-kl", "--out",
                     str(tmp_path / "ae"), "--steps", "2", "--batch-size", "2", "--crop", "16", "--frames", "3",
                     "--quiet", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 2
    (tmp_path / "empty").mkdir()                             # there, holding no video: a usage error
    assert run_cli("clipproof", "datasets", "train-autoencoder", str(tmp_path / "empty"), "--out",
                   str(tmp_path / "z")).returncode == 64


@pytest.mark.slow
def test_a_corpus_with_reconstructed_clips_keeps_each_beside_its_footage(footage, tmp_path):
    from clipproof.datasets.build import build_corpus
    from clipproof.datasets.recipe import recipe_from_dict
    from clipproof.records import read_manifest
    more = tmp_path / "footage"
    more.mkdir()
    for seed in range(2, 6):
        write_mp4(moving_scene(30, 48, 40, seed=seed), more / f"cam{seed}.mp4", fps=10)
    for f in footage.glob("*.mp4"):
        (more / f.name).write_bytes(f.read_bytes())
    train_autoencoder("tiny-kl", sorted(more.glob("*.mp4")), tmp_path / "ae",
                      AutoencoderSettings(steps=2, batch_size=2, crop=16, frames=3, checkpoint_every=2),
                      progress=False, log=lambda m: None)
    recipe = recipe_from_dict({"seed": 3, "clip": {"frames": 8, "width": 16, "height": 16, "windows": 2},
                               "real": [{"kind": "folder", "path": str(more)}],
                               "reconstructed": [{"autoencoder": str(tmp_path / "ae")}]})
    result = build_corpus(recipe, tmp_path / "corpus", show_progress=False, log=lambda m: None)
    records = read_manifest(result.corpus)
    real = {r.id: r for r in records if r.label == "real"}
    fakes = [r for r in records if r.label == "synthetic"]
    assert len(fakes) == len(real) and all(r.source.startswith("autoencoder:tiny-kl@") for r in fakes)
    for r in fakes:
        parent = real[r.id.removesuffix("-ae-tiny-kl")]
        assert (r.split, r.group, r.fps, r.width, r.frames) == (parent.split, parent.group, parent.fps, parent.width,
                                                                parent.frames)
    assert {r.split for r in records} == {"train", "val", "test"}
    # Made from the same pixels, with the footage around them: same place in the source, and
    # the reconstruction is of the clip (not of something else), though not the clip itself.
    twin = fakes[0]
    parent = real[twin.id.removesuffix("-ae-tiny-kl")]
    assert twin.start_s == parent.start_s
    a, _ = read_frames(result.corpus / parent.path)
    b, _ = read_frames(result.corpus / twin.path)
    assert a.shape == b.shape and not np.array_equal(a, b)
    with pytest.raises(InputMissingError, match="not a trained autoencoder"):
        build_corpus(recipe_from_dict({"real": [{"kind": "folder", "path": str(more)}],
                                       "reconstructed": [{"autoencoder": str(tmp_path / "nothing")}]}),
                     tmp_path / "corpus2", show_progress=False, log=lambda m: None)
    assert not list((tmp_path / "corpus2").glob("clips/*"))
    with pytest.raises(UsageError, match="needs real footage"):
        recipe_from_dict({"reconstructed": [{"autoencoder": str(tmp_path / "ae")}],
                          "synthetic": [{"generator": "wan-xs"}]})


@pytest.mark.slow
def test_native_crops_from_corpus_to_verify(tmp_path):
    # The chain issue 14 builds on: a corpus of native-resolution crops with reconstructed
    # clips as its synthetic half, a detector trained on it, and verify cutting clips alike.
    import torch

    from clipproof.datasets.build import build_corpus
    from clipproof.datasets.dataset import ClipDataset
    from clipproof.datasets.recipe import recipe_from_dict
    from clipproof.detector.inference import Detector
    from clipproof.detector.settings import DetectorSettings
    from clipproof.detector.train import corpus_input, train_detector
    from clipproof.media import probe
    from clipproof.records import read_manifest
    footage = tmp_path / "footage"
    footage.mkdir()
    for seed in range(6):
        write_mp4(moving_scene(40, 96, 80, seed=seed), footage / f"cam{seed}.mp4", fps=10)
    train_autoencoder("tiny-kl", sorted(footage.glob("*.mp4")), tmp_path / "ae",
                      AutoencoderSettings(steps=2, batch_size=2, crop=16, frames=3, checkpoint_every=2),
                      progress=False, log=lambda m: None)
    recipe = recipe_from_dict({"seed": 1, "clip": {"frames": 8, "width": 32, "height": 32, "windows": 2, "native": True},
                               "real": [{"kind": "folder", "path": str(footage)}],
                               "reconstructed": [{"autoencoder": str(tmp_path / "ae")}]})
    corpus = build_corpus(recipe, tmp_path / "corpus", show_progress=False, log=lambda m: None).corpus
    assert {(r.width, r.height) for r in read_manifest(corpus)} == {(32, 32)}
    assert corpus_input(corpus, crops=3) == {"input": "native", "crops": 3}
    torch.manual_seed(0)
    train_detector(ClipDataset(corpus, "train"), ClipDataset(corpus, "val"), "frame-avg", tmp_path / "det",
                   DetectorSettings(epochs=1, batch_size=4), {"backbone_norm": "group"},
                   clip_input=corpus_input(corpus, crops=3), progress=False, log=lambda m: None)
    detector = Detector(tmp_path / "det", "torch")
    clip = write_mp4(moving_scene(24, 128, 96, seed=9), tmp_path / "clip.mp4", fps=12)
    media = probe(clip)
    segments = detector.segments(media)
    x = detector.read_segments(clip, media, segments)
    assert detector.input == "native" and x.shape == (3 * len(segments), 8, 3, 32, 32)
    findings = detector.score(clip, media)
    assert len(findings.segments) == len(segments) and 0 <= findings.p_synthetic <= 1


def test_the_adversarial_term_is_scaled_to_the_reconstruction_gradient():
    """The decoder's adversarial loss, times the adaptive weight, pulls on the last decoder layer
    as hard as the reconstruction loss does, whatever their raw scales."""
    import torch
    from clipproof.datasets.discriminator import adaptive_weight, last_decoder_layer
    ae = AUTOENCODERS["kl-sd"].make()
    assert last_decoder_layer(ae) is ae.decoder.conv_out.weight
    layer = last_decoder_layer(ae)
    x = torch.randn(2, 3, 16, 16)
    out = ae.decode(ae.encode(x).latent_dist.mode()).sample
    rec, adv = (out - x).abs().mean(), -1000.0 * out.mean()
    w = adaptive_weight(rec, adv, layer)
    rec_norm = torch.autograd.grad(rec, layer, retain_graph=True)[0].norm()
    adv_norm = torch.autograd.grad(w * adv, layer)[0].norm()
    assert not w.requires_grad and 0 < float(w) < 1e-2
    assert float(adv_norm) == pytest.approx(float(rec_norm), rel=1e-3)


@pytest.mark.slow
def test_a_discriminator_joins_at_its_step_and_resumes(footage, tmp_path):
    """With --adversarial the decoder trains against a patch discriminator from
    --adversarial-from on; the discriminator is checkpointed beside the autoencoder and resumed
    with it; and a footage reader other than PyAV (a machine without it) can be passed."""
    from clipproof.media import read_frames as pyav
    read_calls = []

    def read(video, max_frames):
        read_calls.append(video.name)
        return pyav(video)[0][:max_frames]

    videos = sorted(footage.glob("*.mp4"))
    with pytest.raises(UsageError, match="--adversarial needs crops of at least 32 pixels"):
        train_autoencoder("tiny-kl", videos, tmp_path / "small", AutoencoderSettings(crop=16, frames=1, adversarial=1))
    settings = AutoencoderSettings(steps=2, batch_size=2, crop=32, frames=1, checkpoint_every=1, adversarial=0.5,
                                   adversarial_from=1)
    info = train_autoencoder("tiny-kl", videos, tmp_path / "ae", settings, progress=False, log=lambda m: None, read=read)
    assert read_calls == ["cam0.mp4", "cam1.mp4"] and info["settings"]["adversarial"] == 0.5
    critic = json.loads((tmp_path / "ae" / "discriminator" / "state.json").read_text())
    assert critic["step"] == 1                               # step 0 was the pixel loss alone
    train_autoencoder("tiny-kl", videos, tmp_path / "ae", AutoencoderSettings(**{**settings.__dict__, "steps": 4}),
                      progress=False, log=lambda m: None)
    assert json.loads((tmp_path / "ae" / "discriminator" / "state.json").read_text())["step"] == 3
    with pytest.raises(UsageError, match="holds a run of another model"):   # the weight is part of the run
        train_autoencoder("tiny-kl", videos, tmp_path / "ae",
                          AutoencoderSettings(**{**settings.__dict__, "steps": 5, "adversarial": 0.1}),
                          progress=False, log=lambda m: None)
    for weight in ("nan", "inf", "-1"):
        with pytest.raises(UsageError, match="--adversarial must be a finite number, 0 or more"):
            AutoencoderSettings(adversarial=float(weight))
    with pytest.raises(UsageError, match="--adversarial-from needs --adversarial"):
        AutoencoderSettings(adversarial_from=100)


def test_an_interrupted_run_checkpoints_the_steps_it_took(footage, tmp_path, monkeypatch):
    """Ctrl-C, or a job's time limit sent as SIGINT, saved nothing since the last scheduled
    checkpoint; now the steps taken are saved and the same command resumes from them."""
    from clipproof.datasets import autoencoders
    calls, hinge = [], autoencoders.hinge_loss

    def hinge_then_interrupt(real, fake):       # the second discriminator step is interrupted
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return hinge(real, fake)

    monkeypatch.setattr(autoencoders, "hinge_loss", hinge_then_interrupt)
    settings = AutoencoderSettings(steps=50, batch_size=2, crop=32, frames=1, checkpoint_every=100, adversarial=0.5)
    with pytest.raises(KeyboardInterrupt):
        train_autoencoder("tiny-kl", sorted(footage.glob("*.mp4")), tmp_path / "ae", settings, progress=False,
                          log=lambda m: None)
    assert json.loads((tmp_path / "ae" / "state.json").read_text())["step"] == 2
    assert json.loads((tmp_path / "ae" / "discriminator" / "state.json").read_text())["step"] == 1


def test_footage_that_is_not_there_is_named(tmp_path):
    """A mistyped footage folder said "no videos in the footage folders" (64), as if it were
    empty; it is a missing input (66), named."""
    result = run_cli("clipproof", "datasets", "train-autoencoder", str(tmp_path / "fotage"), "--out", str(tmp_path / "o"))
    assert result.returncode == 66 and "fotage: no such file or folder" in result.stderr
    assert not (tmp_path / "o").exists()
