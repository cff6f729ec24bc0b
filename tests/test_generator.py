"""The generator on a tiny config: it learns, samples deterministically, and every clip it
writes decodes, has the asked shape, keeps its conditioning, and verifies as AI-generated."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clipproof.provenance.store import open_store
from clipproof.watermark import ALGORITHM
import torch

from clipproof import verify
from clipproof.datasets.dataset import ClipDataset
from clipproof.errors import InputMissingError, InvalidMediaError, UsageError
from clipproof.generator.configs import get_config
from clipproof.generator.generate import (GenerateOptions, extend_clip, fit_image, generate, load_generator,
                                          sample_clips)
from clipproof.generator.model import VideoDiT
from clipproof.generator.settings import TrainSettings
from clipproof.generator.train import train
from clipproof.media import probe
from clipproof.provenance.keys import load_identity
from conftest import FIXTURES, fixed_batch, run_cli, run_process


def test_loss_falls_on_a_fixed_batch(trained, tiny_corpus):
    from clipproof.generator.pipeline import training_scheduler
    from clipproof.generator.train import _loss, training_draws
    ds = fixed_batch(tiny_corpus)
    frames = torch.stack([ds[i][0] for i in range(len(ds))])
    classes = [r.group for r in ds.records]
    cfg = get_config("tiny")
    untrained = VideoDiT.from_generator_config(cfg, sorted(set(classes)))
    learned = load_generator(weights=trained[0]).pipeline.transformer

    draws = training_draws(cfg, TrainSettings(seed=123), 0, len(frames))   # the same noise and tasks for both

    def loss(model) -> float:
        with torch.no_grad():
            return _loss(model, model, training_scheduler(cfg), frames, classes, draws).item()
    before, after = loss(untrained), loss(learned)
    assert after < 0.7 * before, (before, after)
    assert trained[1].steps == 60 and len(trained[1].losses) >= 2


def test_resume_continues_from_the_checkpoint(trained, tiny_corpus):
    out, first = trained
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 60
    messages = []
    more = train(fixed_batch(tiny_corpus), lambda r: r.group, get_config("tiny"), out,
                 TrainSettings(steps=70, batch_size=8, lr=2e-3, warmup=5, checkpoint_every=30, ema_decay=0.9),
                 progress=False,
                 log=messages.append)
    assert messages[0] == "resuming from step 60" and more.steps == 70
    assert more.losses[: len(first.losses)] == first.losses


def test_pipeline_round_trips_and_samples_deterministically(trained):
    gen = load_generator(weights=trained[0])
    assert gen.config.name == "tiny" and len(gen.weights_sha256) == 64
    classes = gen.pipeline.transformer.class_names
    a = sample_clips(gen, [classes[0], None], [1, 2], steps=4)
    b = sample_clips(gen, [classes[0], None], [1, 2], steps=4)
    c = sample_clips(gen, [None], [2], steps=4)                   # the same seed alone, batch of one
    assert a.shape == (2, 8, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a[1], c[0])
    assert not np.array_equal(a, sample_clips(gen, [classes[0], None], [3, 4], steps=4))
    dpm = sample_clips(gen, [classes[0]], [1], steps=4, sampler="dpm++")
    assert dpm.shape == (1, 8, 16, 16, 3)


def test_i2v_keeps_the_first_frame(trained):
    gen = load_generator(weights=trained[0])
    still = fit_image(FIXTURES / "C.jpg", 16)
    assert still.shape == (16, 16, 3)
    clips = sample_clips(gen, [None], [5], mode="i2v", first_frames=still[None], steps=4)
    mse = np.mean((clips[0, 0].astype(float) - still.astype(float)) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= 30


def test_extend_adds_as_many_frames(trained):
    gen = load_generator(weights=trained[0])
    base = sample_clips(gen, [None], [7], steps=4)[0]
    longer = extend_clip(gen, base, len(base), seed=7, steps=4)
    assert longer.shape == (16, 16, 16, 3) and np.array_equal(longer[:8], base)


def test_generate_writes_signed_clips_and_a_manifest(trained, keys, tmp_path, monkeypatch):
    # The tiny model's 16x16 clips are too small for a findable mark: marked here all the same,
    # to run the path every clip of a large enough generator takes.
    monkeypatch.setattr("clipproof.watermark.pattern.MIN_MARKED_SIDE", 16)
    gen = load_generator(weights=trained[0])
    identity = load_identity(keys.key, keys.chain)
    records = generate(gen, GenerateOptions(n=3, steps=3, seed=11, batch=2), tmp_path / "out", identity)
    assert [r.id for r in records] == ["tiny-t2v-000011", "tiny-t2v-000012", "tiny-t2v-000013"]
    for r in records:
        path = tmp_path / "out" / r.path
        info = probe(path)
        assert (info.frames, info.width, info.height) == (8, 16, 16)
        report = verify(path, trust=keys.root, detector=None)
        assert report.verdict == "ai-generated-declared" and report.credentials.state == "trusted"
        agent = report.credentials.actions[0].software_agent
        assert agent.startswith("clipproof-generator/tiny")
        # Every clip carries the watermark's soft binding, and its manifest is in the user's store.
        binding = report.credentials.soft_binding
        assert binding["alg"] == ALGORITHM and len(binding["value"]) == 16
        assert [m.asset_sha256 for m in open_store().by_binding(ALGORITHM, binding["value"])] == [r.sha256]
    assert not any(p.name.startswith(".unsigned") for p in (tmp_path / "out").iterdir())
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [m["label"] for m in manifest] == ["synthetic"] * 3 and manifest[0]["generator"] == "tiny"

    import c2pa
    store = json.loads(c2pa.Reader(str(tmp_path / "out" / records[0].path)).json())
    assertions = store["manifests"][store["active_manifest"]]["assertions"]
    actions = next(a for a in assertions if a["label"].startswith("c2pa.actions"))
    params = actions["data"]["actions"][0]["parameters"]
    assert params["seed"] == 11 and params["steps"] == 3 and params["weights_sha256"] == gen.weights_sha256
    # The same seed again would overwrite: refused.
    with pytest.raises(Exception, match="already exists"):
        generate(gen, GenerateOptions(n=1, steps=3, seed=11), tmp_path / "out", identity)


def test_clips_too_small_for_a_mark_name_no_soft_binding(trained, keys, tmp_path):
    # 16x16 pictures hold too few chips to find a mark in: a soft binding in their manifests
    # would name something no one can resolve.
    gen = load_generator(weights=trained[0])
    identity = load_identity(keys.key, keys.chain)
    stored = open_store().count()
    records = generate(gen, GenerateOptions(n=1, steps=2, seed=3), tmp_path / "out", identity)
    report = verify(tmp_path / "out" / records[0].path, trust=keys.root, detector=None)
    assert report.verdict == "ai-generated-declared" and report.credentials.soft_binding is None
    assert open_store().count() == stored


@pytest.mark.parametrize("options, said", [
    ({"mode": "extend", "clip": "x.mp4", "seconds": 1e5}, "at most 600"),     # ran for days
    ({"mode": "extend", "clip": "x.mp4", "seconds": float("nan")}, "at most 600"),   # an internal error
    ({"guidance": float("nan")}, "finite"),        # sampled NaN pictures, then "not a well-formed mp4"
])
def test_options_that_cannot_make_a_clip_are_refused_first(trained, keys, tmp_path, options, said):
    gen = load_generator(weights=trained[0])
    with pytest.raises(UsageError, match=said):
        generate(gen, GenerateOptions(n=1, steps=2, **options), tmp_path / "out", load_identity(keys.key, keys.chain))
    assert not (tmp_path / "out").exists()


def test_extend_cli_doubles_a_clip(trained, keys, tmp_path):
    out = tmp_path / "ext"
    first = run_process("clipproof", "generate", "--weights", str(trained[0]), "--n", "1", "--steps", "3",
                    "--key", str(keys.key), "--cert", str(keys.chain), "--out", str(out))
    assert first.returncode == 0, first.stderr
    clip = out / "tiny-t2v-000000.mp4"
    ext = run_cli("clipproof", "generate", "--weights", str(trained[0]), "--mode", "extend", "--clip", str(clip),
                  "--n", "1", "--steps", "3", "--seed", "4", "--key", str(keys.key), "--cert", str(keys.chain),
                  "--out", str(out))
    assert ext.returncode == 0, ext.stderr
    longer = out / "tiny-extend-000004.mp4"
    assert probe(longer).frames == 2 * probe(clip).frames
    assert verify(longer, detector=None).verdict == "ai-generated-declared"


def test_dev_identity_is_made_once(trained, tmp_path):
    out = tmp_path / "dev"
    runs = [run_cli("clipproof", "generate", "--weights", str(trained[0]), "--n", "1", "--steps", "2",
                    "--seed", str(s), "--out", str(out)) for s in (1, 2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert "development signing keys" in runs[0].stderr and "development signing keys" not in runs[1].stderr


@pytest.mark.parametrize("args, code, text", [
    (["--mode", "i2v"], 64, "needs --image"),
    (["--mode", "i2v", "--image", "/nonexistent.png"], 66, "no such image"),
    (["--mode", "extend", "--clip", "/nonexistent.mp4"], 66, "no such file"),
    (["--config", "nope"], 64, "invalid choice: 'nope'"),
    (["--class", "nope"], 64, "unknown class"),
    (["--steps", "0"], 64, "at least 1"),
])
def test_bad_arguments_one_line(trained, tmp_path, args, code, text):
    out = run_cli("clipproof", "generate", *(["--weights", str(trained[0])] if "--config" not in args else []),
                  *args, "--out", str(tmp_path / "bad"))
    assert out.returncode == code, out.stderr
    assert text in out.stderr and out.stderr.strip().count("\n") <= 1 and "Traceback" not in out.stderr


def test_corrupt_weights_are_one_line(trained, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(trained[0], broken)
    weights = next(broken.rglob("transformer/diffusion_pytorch_model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])             # a truncated download or copy
    out = run_cli("clipproof", "generate", "--weights", str(broken), "--n", "1", "--steps", "2",
                  "--out", str(tmp_path / "out"))
    assert out.returncode == 66, out.stderr
    # (the line before it, if any, is the once-only notice that development keys were made)
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("clipproof generate: ") and "unreadable generator weights" in last
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.glob("out/*.mp4"))


def test_bad_output_folder_and_training_numbers_are_one_line(trained, tiny_corpus, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    cases = [
        (["generate", "--weights", str(trained[0]), "--n", "1", "--out", str(a_file)], 73, "exists and is not a folder"),
        (["generator", "train", "--corpus", str(tiny_corpus), "--config", "tiny", "--out", str(a_file)], 73,
         "exists and is not a folder"),
        (["generator", "train", "--corpus", str(tiny_corpus), "--config", "tiny", "--steps", "0",
          "--out", str(tmp_path / "t")], 64, "--steps must be at least 1"),
        (["generator", "train", "--corpus", str(tiny_corpus), "--config", "tiny", "--batch-size", "0",
          "--out", str(tmp_path / "t")], 64, "--batch-size must be at least 1"),
    ]
    for args, code, text in cases:
        out = run_cli("clipproof", *args)
        assert out.returncode == code, (args, out.stderr)
        last = out.stderr.strip().splitlines()[-1]
        assert text in last and "Traceback" not in out.stderr, (args, out.stderr)
    assert a_file.read_text() == "keep me"


def test_not_an_image_for_i2v(trained, tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("no image")
    with pytest.raises(InvalidMediaError):
        fit_image(bad, 16)
    with pytest.raises(InputMissingError):
        load_generator(weights=tmp_path)


def test_training_refuses_clips_of_the_wrong_shape(tiny_corpus, tmp_path):
    with pytest.raises(UsageError, match="needs"):
        train(ClipDataset(tiny_corpus, "train"), lambda r: r.group, get_config("latte-xs"), tmp_path / "x",
              TrainSettings(steps=1), progress=False)


@pytest.mark.parametrize("name", ["tiny", "tiny-wan", "tiny-spatial"])
def test_every_layout_takes_a_training_step(name):
    from clipproof.generator.pipeline import training_scheduler
    from clipproof.generator.train import _loss, training_draws
    cfg = get_config(name)
    model = VideoDiT.from_generator_config(cfg, ["a", "b"])
    x = torch.randn(2, 3, cfg.frames, cfg.size, cfg.size)
    out = model(x, torch.tensor([5, 500]), torch.tensor([0, 2]), x, torch.zeros(2, 1, cfg.frames, cfg.size, cfg.size))
    assert out.shape == x.shape
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    clips = torch.rand(4, cfg.frames, 3, cfg.size, cfg.size) * 2 - 1
    loss = _loss(model, model, training_scheduler(cfg), clips, ["a", "b", "a", "b"],
                 training_draws(cfg, TrainSettings(), 0, 4))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any("transformer" in n for n in changed) and "class_embedding.weight" in changed


@pytest.mark.slow      # the bundled generator sampling, in several modes
def test_conditioning_reaches_the_frames_made():
    # Positive control: a model that ignores the known frames (it sees zeros and an empty mask)
    # returns the copied frame but continues from nothing; a trained model continues the still.
    # (The bundled default generator: the session's tiny model has not learnt continuity.)
    gen = load_generator()
    model = gen.pipeline.transformer
    forward = model.forward
    still = fit_image(FIXTURES / "C.jpg", gen.config.size)[None]

    def continuity(clips) -> float:       # how far the first frame made is from the known one
        return float(np.mean((clips[0, 1].astype(float) - clips[0, 0].astype(float)) ** 2))
    aware = continuity(sample_clips(gen, [None], [5], mode="i2v", first_frames=still, steps=4))
    try:
        model.forward = lambda noisy, t, cls, known, mask: forward(noisy, t, cls, known * 0, mask * 0)
        blind = continuity(sample_clips(gen, [None], [5], mode="i2v", first_frames=still, steps=4))
        base = sample_clips(gen, [None], [7], steps=4)[0]
        blind_ext = extend_clip(gen, base, len(base), seed=7, steps=4)
    finally:
        model.forward = forward
    aware_ext = extend_clip(gen, base, len(base), seed=7, steps=4)
    assert aware < 0.7 * blind, (aware, blind)
    k = gen.config.frames

    def seam(clip) -> float:             # the jump from the last known frame to the first new one
        return float(np.mean((clip[k].astype(float) - clip[k - 1].astype(float)) ** 2))
    assert seam(aware_ext) < 0.7 * seam(blind_ext), (seam(aware_ext), seam(blind_ext))


def ddp_generator_run(corpus: str, out: str) -> None:
    from conftest import fixed_batch
    torch.manual_seed(0)
    train(fixed_batch(corpus), lambda r: r.group, get_config("tiny"), out,
          TrainSettings(steps=4, batch_size=8, lr=2e-3, warmup=2, checkpoint_every=4, ema_decay=0.9),
          progress=False, log=lambda m: None)


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one(tiny_corpus, tmp_path):
    # Each rank takes half of every global batch of 8 and the same noise and tasks for its rows,
    # so the DDP loss equals the single-process loss on the same batch, step by step.
    from conftest import run_ddp
    ddp_generator_run(str(tiny_corpus), str(tmp_path / "one"))
    run_ddp("test_generator:ddp_generator_run", corpus=str(tiny_corpus), out=str(tmp_path / "two"))
    one, two = (json.loads((tmp_path / f / "state.json").read_text()) for f in ("one", "two"))
    assert one["step"] == two["step"] == 4
    assert one["record"]["losses"] == pytest.approx(two["record"]["losses"], rel=1e-4)
    from safetensors.torch import load_file
    w1, w2 = (load_file(str(tmp_path / f / "state.safetensors")) for f in ("one", "two"))
    assert all(torch.allclose(w1[k], w2[k], rtol=1e-3, atol=1e-5) for k in w1 if k.startswith("model."))


@pytest.mark.slow
def test_generator_train_command_under_torchrun(tiny_corpus, tmp_path):
    # End to end, as a user launches DDP: torchrun starts 2 processes of the real command.
    out = tmp_path / "ddp"
    run = run_process("torchrun", "--standalone", "--nproc_per_node", "2", "-m", "clipproof.cli",
                      "generator", "train", "--corpus", str(tiny_corpus), "--config", "tiny", "--steps", "3",
                      "--batch-size", "4", "--checkpoint-every", "3", "--threads", "1", "--quiet", "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("tiny: 3 steps") == 1                  # rank 0 speaks for both
    assert json.loads((out / "state.json").read_text())["step"] == 3
    assert load_generator(weights=out).config.name == "tiny"
    # A batch the ranks cannot share is refused by each rank before it joins the group: one rank
    # alone, with nobody to join, says so and exits (a check made after joining would wait here).
    from conftest import free_port
    odd = run_process("clipproof", "generator", "train", "--corpus", str(tiny_corpus), "--config", "tiny",
                      "--steps", "1", "--batch-size", "3", "--quiet", "--out", str(tmp_path / "odd"),
                      env={"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": str(free_port())})
    assert odd.returncode == 64 and "--batch-size 3 must be a multiple of the 2 processes" in odd.stderr
    assert not (tmp_path / "odd" / "state.json").exists()
