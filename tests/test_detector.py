"""The detector on a tiny corpus made here: animated photographs (real) and clips of the tiny
generator (synthetic). It learns, calibrates, evaluates, and fills the detector part of `verify`."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from clipproof import Verifier
from clipproof.datasets.build import build_corpus
from clipproof.datasets.dataset import Augment, ClipDataset
from clipproof.datasets.recipe import recipe_from_dict
from clipproof.detector.calibration import calibrate
from clipproof.detector.evaluate import evaluate
from clipproof.detector.metrics import ece, eer
from clipproof.detector.registry import create_model, list_models
from clipproof.detector.evaluate import predict_logits
from clipproof.detector.settings import DetectorSettings
from clipproof.detector.train import backbone_upsample, train_detector
from clipproof.detector.weights import MODEL_TENSORS, load_weights
from clipproof.errors import UsageError
from conftest import FIXTURES, run_cli, run_process

STILLS = ["coffee", "astronaut", "rocket", "brick", "chelsea", "moon", "camera", "coins", "grass", "gravel",
          "china", "flower"]


@pytest.fixture(scope="module")
def mixed_corpus(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "corpus"
    synthetic = {"generator": "tiny", "weights": str(trained[0]), "steps": 3, "count": 24,
                 "modes": ["t2v", "i2v", "extend"]}
    recipe = recipe_from_dict({
        "seed": 1, "clip": {"frames": 8, "width": 16, "height": 16, "windows": 3},
        "splits": {"train": 0.5, "val": 0.25, "test": 0.25},
        "real": [{"kind": "stills", "names": STILLS}],
        "synthetic": [synthetic, {**synthetic, "sampler": "dpm++", "count": 12}],
        "variants": {"reencode_crf": [35]}})
    build_corpus(recipe, out, show_progress=False, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def detector(mixed_corpus, tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("det") / "weights"
    settings = DetectorSettings(epochs=6, batch_size=8, lr=2e-3, patience=6)
    train = ClipDataset(mixed_corpus, "train", augment=Augment(flip=0.5), seed=0)
    config = train_detector(train, ClipDataset(mixed_corpus, "val"), "st-attention", out, settings,
                            progress=False, log=lambda m: None)
    return out, config


def weights_copy(weights: Path, to: Path, *, measured_recall: bool = False) -> Path:
    """A copy of ``weights`` to change; ``measured_recall``: as if leave-one-out had found that no
    generated clip of an unseen generator scored as low as real footage (calls_real on)."""
    import shutil

    from clipproof.detector.calibration import with_unseen_recall
    from clipproof.detector.weights import CALIBRATION_FILE
    shutil.copytree(weights, to)
    if measured_recall:
        calibration = load_weights(to)[2]
        with_unseen_recall(calibration, {"results": {"A": {"synthetic_at_or_below_low": 0.0}}}).save(to / CALIBRATION_FILE)
    return to


def test_models_registered_and_forward():
    assert {"st-attention", "frame-avg"} <= set(list_models())
    for name in ("st-attention", "frame-avg"):
        out = create_model(name, frames=8)({"frames": torch.randn(2, 8, 3, 16, 16)})
        assert out["logits"].shape == (2,)
        assert torch.allclose(out["scores"], torch.sigmoid(out["logits"]))
    with pytest.raises(UsageError):
        create_model("nope")


def test_the_backbone_sees_at_least_64_pixels_at_the_same_cost():
    # 32x32 crops are enlarged 2x inside the model; 64x64 crops are seen as they are, so the
    # backbone's input (and its cost) is the same for both.
    assert [backbone_upsample(s) for s in ((16, 16), (32, 32), (64, 48), (64, 64), (96, 128))] == [2, 2, 2, 1, 1]
    small, large = create_model("st-attention", frames=2, upsample=2), create_model("st-attention", frames=2, upsample=1)
    large.load_state_dict(small.state_dict())
    x = torch.rand(1, 2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        enlarged = torch.nn.functional.interpolate(x.flatten(0, 1), scale_factor=2, mode="nearest").unflatten(0, (1, 2))
        assert torch.allclose(small.eval().features(x), large.eval().features(enlarged), atol=1e-5)


def test_the_neighbour_residual_keeps_what_lies_within_2x2_cells_and_drops_the_rest():
    from clipproof.detector.models.st_attention_npr import neighbour_residual
    torch.manual_seed(0)
    coarse = torch.rand(1, 2, 3, 8, 8)
    blocky = torch.nn.functional.interpolate(coarse.flatten(0, 1), scale_factor=2, mode="nearest").unflatten(0, (1, 2))
    assert torch.equal(neighbour_residual(blocky), torch.zeros_like(blocky))   # a picture made of whole cells: nothing
    fine = torch.rand(1, 2, 3, 16, 16)
    r = neighbour_residual(fine)
    assert torch.equal(r[..., ::2, ::2], torch.zeros_like(r[..., ::2, ::2]))  # each cell against its top-left pixel
    assert torch.allclose(r[..., 1::2, 1::2], fine[..., 1::2, 1::2] - fine[..., ::2, ::2])
    assert torch.allclose(neighbour_residual(fine + blocky), r, atol=1e-6)     # content of whole cells drops out
    assert create_model("st-attention-npr", frames=2)(fine * 2 - 1)["logits"].shape == (1,)


def test_temporal_difference_input_reaches_each_frames_features():
    torch.manual_seed(0)
    clip = torch.rand(1, 4, 3, 16, 16) * 2 - 1
    changed = clip.clone()
    changed[:, 1] = -changed[:, 1]            # only frame 1 differs
    for name, sees_previous in (("st-attention", True), ("frame-avg", False)):
        model = create_model(name, frames=4).eval()
        with torch.no_grad():
            a, b = model.features(clip), model.features(changed)
        assert not torch.allclose(a[:, 1], b[:, 1])
        # Frame 2's own pixels are the same; only a model that sees differences notices frame 1.
        assert torch.allclose(a[:, 2], b[:, 2]) != sees_previous
        assert torch.allclose(a[:, 3], b[:, 3])


def test_training_beats_chance_on_held_out_clips(detector, mixed_corpus):
    model, config, cal = load_weights(detector[0])
    logits, y, records = predict_logits(model, ClipDataset(mixed_corpus, "test"))
    assert set(y.tolist()) == {0, 1}
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, logits) > 0.75
    assert config["best_val_auc"] > 0.75 and len(config["history"]) >= 1


def test_training_resumes_where_it_stopped(mixed_corpus, tmp_path):
    def run(epochs, folder=tmp_path / "resumed"):
        # With an EMA of the weights, so the resumed run must restore that too.
        settings = DetectorSettings(epochs=epochs, batch_size=8, lr=2e-3, patience=9, ema=0.9)
        messages = []
        config = train_detector(ClipDataset(mixed_corpus, "train"), ClipDataset(mixed_corpus, "val"), "frame-avg",
                                folder, settings, progress=False, log=messages.append)
        return config, messages
    first, _ = run(1)
    second, messages = run(2)
    assert "resuming after epoch 1" in messages
    assert [h["epoch"] for h in second["history"]] == [1, 2]
    assert second["history"][0] == first["history"][0]
    uninterrupted, _ = run(2, tmp_path / "straight")
    assert uninterrupted["history"] == second["history"]
    finished, messages = run(2)                     # a finished run only reloads and calibrates
    assert "resuming after epoch 2" in messages and finished["history"] == second["history"]


def test_calibration_lowers_ece():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    logits = (y * 2 - 1) * 1.0 + rng.normal(0, 1.0, 2000)   # true log-odds: 2 * logits
    overconfident = logits * 4                              # so the right temperature is 2
    cal = calibrate(overconfident, y)
    before = ece(1 / (1 + np.exp(-overconfident)), y)
    after = ece(cal.probability(overconfident), y)
    assert after < 0.6 * before and 1.7 < cal.temperature < 2.3
    assert 0 < cal.low <= cal.high < 1
    # high keeps >= 99 % of real clips below it.
    assert (cal.probability(overconfident)[y == 0] < cal.high).mean() >= 0.985
    assert 0 <= eer(cal.probability(overconfident), y) < 0.5


def test_the_clip_score_discounts_the_number_of_segments():
    # Real segments' logits ~ N(-2, 1): the highest of 24 crosses the single-segment 99th percentile
    # in a fifth of real clips; discounted, in 1 % as for one segment, whatever the length.
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(4000), np.ones(4000)].astype(int)
    cal = calibrate(np.r_[rng.normal(-2, 1, 4000), rng.normal(3, 1, 4000)], y)
    assert cal.real_mean == pytest.approx(-2, abs=0.05) and cal.real_std == pytest.approx(1, abs=0.05)
    cut = np.log(cal.high / (1 - cal.high)) * cal.temperature          # the logit at ``high``
    for n in (1, 4, 24):
        clips = rng.normal(-2, 1, (3000, n))
        flagged = np.mean([cal.clip_logit(c) >= cut for c in clips])
        assert flagged <= 0.02, (n, flagged)
        if n == 24:
            assert (clips.max(axis=1) >= cut).mean() > 0.1           # what the bare maximum would flag
    # One segment is its own score; a clearly synthetic stretch in a long clip still decides.
    assert cal.clip_logit(np.array([1.5])) == 1.5
    insert = np.r_[rng.normal(-2, 1, 22), 4.0, 4.5]
    assert cal.clip_probability(insert) >= cal.high
    assert cal.clip_probability(insert) <= cal.probability(np.array([4.5]))[0]
    old = dataclasses.replace(cal, real_mean=None, real_std=None)      # weights calibrated before it
    assert old.clip_logit(insert) == 4.5


def test_likely_real_needs_a_measured_recall_on_unseen_generators(detector, tmp_path):
    from clipproof.detector.calibration import MAX_MISSED_UNSEEN
    weights = weights_copy(detector[0], tmp_path / "w")
    assert not load_weights(weights)[2].calls_real                    # training alone leaves it off
    loo = tmp_path / "loo.json"

    def calibrate_with(missed: dict) -> tuple[int, str]:
        loo.write_text(json.dumps({"axis": "generator", "results": {
            name: {"synthetic_at_or_below_low": v} for name, v in missed.items()}}))
        out = run_cli("clipproof", "detector", "calibrate", "--weights", str(weights), "--loo", str(loo))
        return out.returncode, out.stdout + out.stderr

    code, text = calibrate_with({"A": 0.01, "B": MAX_MISSED_UNSEEN})
    assert code == 0 and "likely real: yes" in text and load_weights(weights)[2].calls_real
    code, text = calibrate_with({"A": 0.01, "B": 0.4})
    cal = load_weights(weights)[2]
    assert code == 0 and "likely real: no" in text and not cal.calls_real
    assert "B 40%" in cal.calls_real_note and "no evidence" in cal.calls_real_note
    # Generators left out in runs of their own: every record counts, not only the last one given.
    alone = tmp_path / "loo-a.json"
    alone.write_text(json.dumps({"axis": "generator", "results": {"A": {"synthetic_at_or_below_low": 0.0}}}))
    out = run_cli("clipproof", "detector", "calibrate", "--weights", str(weights), "--loo", str(loo), "--loo", str(alone))
    assert out.returncode == 0 and "likely real: no" in out.stdout and "2 generators" in out.stdout, out.stdout
    assert "A 0%" in out.stdout and "B 40%" in out.stdout
    cal = load_weights(weights)[2]
    stale = tmp_path / "loo-stale.json"
    stale.write_text(json.dumps({"axis": "generator", "results": {"B": {"auc": 0.9}}}))
    for args, status, message in (
            ([], 64, "nothing to do"),
            (["--loo", str(tmp_path / "none.json")], 66, "no such leave-one-out record"),
            (["--loo", str(weights / "config.json")], 64, "not a leave-one-out record"),
            # A record without the figure, given after a sound one, is named itself.
            (["--loo", str(alone), "--loo", str(stale)], 64, f"{stale}: not a leave-one-out record")):
        out = run_cli("clipproof", "detector", "calibrate", "--weights", str(weights), *args)
        assert out.returncode == status and message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert load_weights(weights)[2] == cal                              # a refused call changes nothing


def test_calibration_is_refitted_on_segments_and_keeps_calls_real(detector, mixed_corpus, tmp_path):
    weights = weights_copy(detector[0], tmp_path / "w", measured_recall=True)
    measured = load_weights(weights)[2]
    out = run_cli("clipproof", "detector", "calibrate", "--weights", str(weights), "--corpus", str(mixed_corpus),
                  "--json")
    after = json.loads(out.stdout)["after"]
    val = ClipDataset(mixed_corpus, "val", variants=None)
    # A corpus of whole frames has one crop a segment: every validation clip (all variants) is one.
    assert after["val_clips"] == len(val) and after["calls_real"] and after["calls_real_note"] == measured.calls_real_note
    assert after["real_std"] > 0 and 0 < after["low"] <= after["high"] < 1


def test_evaluation_writes_tables_and_plots(detector, mixed_corpus, tmp_path):
    result = evaluate(detector[0], mixed_corpus, tmp_path / "eval")
    for name in ("eval.json", "eval.md", "roc.png", "reliability.png"):
        assert (tmp_path / "eval" / name).is_file()
    assert result["overall"]["auc"] > 0.75
    assert set(result["robustness"]) == {"crf35"}
    assert len(result["per_generator"]) == 2
    assert result["held_out_real"]["clips"] > 0
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["thresholds"]["high"] >= 0.5


def separating_copy(weights: Path, corpus: Path, to: Path) -> Path:
    """A copy of ``weights`` whose thresholds are the median probabilities of its real and of its
    generated validation clips. The fitted band of a model this small may hold every clip (its
    validation includes CRF 35 copies it cannot tell from real ones, and which machine trains it
    changes which epoch is best); the verdicts are tested here, the fit elsewhere."""
    from clipproof.datasets.dataset import ClipDataset
    from clipproof.detector.weights import CALIBRATION_FILE
    to = weights_copy(weights, to)
    model, _, calibration = load_weights(to)
    logits, labels, _ = predict_logits(model, ClipDataset(corpus, "val"))
    p = calibration.probability(logits)
    low, high = float(np.median(p[labels == 0])), float(np.median(p[labels == 1]))
    assert low < high, "the model does not tell its validation clips apart"
    dataclasses.replace(calibration, low=low, high=high).save(to / CALIBRATION_FILE)
    return to


def test_verify_fills_the_detector_and_decides(detector, mixed_corpus, tmp_path):
    from clipproof.records import read_manifest
    unmeasured_weights = separating_copy(detector[0], mixed_corpus, tmp_path / "u")
    decisive = weights_copy(unmeasured_weights, tmp_path / "w", measured_recall=True)      # the same thresholds
    verifier = Verifier(detector=decisive)
    records = [r for r in read_manifest(mixed_corpus) if r.split == "test" and r.variant == "original"]
    reports = {r.label: [] for r in records}
    for r in records:
        reports[r.label].append(verifier.verify(mixed_corpus / r.path))
    for rep in reports["synthetic"] + reports["real"]:
        d = rep.detector
        assert d is not None and d.frames_used >= 8 and d.segments and 0 <= d.p_synthetic <= 1
        assert set(d.thresholds) == {"low", "high"}
    synth = [rep for rep in reports["synthetic"] if rep.detector.p_synthetic >= rep.detector.thresholds["high"]]
    real = [rep for rep in reports["real"]
            if max(s.p_synthetic for s in rep.detector.segments) <= rep.detector.thresholds["low"]]
    assert synth and real, "no clear case on either side"
    assert all(rep.verdict == "likely-synthetic" and rep.exit_code == 1 for rep in synth)
    assert all(rep.verdict == "likely-real" and rep.exit_code == 0 for rep in real)
    unmeasured = Verifier(detector=unmeasured_weights).verify(real[0].path)
    assert unmeasured.verdict == "uncertain" and any("unmeasured" in r for r in unmeasured.reasons)
    out = run_cli("verify", "--json", "--detector-weights", str(decisive), str(mixed_corpus / synth[0].path))
    row = json.loads(out.stdout)
    assert row["detector"]["p_synthetic"] >= row["detector"]["thresholds"]["high"] and out.returncode == 1
    text = run_cli("verify", "--detector-weights", str(decisive), str(mixed_corpus / synth[0].path)).stdout
    assert "Detector:" in text and "█" in text


def test_unusable_detector_weights_are_one_line(detector, mixed_corpus, tmp_path):
    import shutil
    clip = str(next(mixed_corpus.rglob("*.mp4")))
    damages = {
        "truncated": lambda w: (w / MODEL_TENSORS).write_bytes((w / MODEL_TENSORS).read_bytes()[:100]),
        "calibration without thresholds": lambda w: (w / "calibration.json").write_text('{"temperature": 1.0}'),
        "tensors of another model": lambda w: (w / "training.json").write_text(
            (w / "training.json").read_text().replace('"st-attention"', '"frame-avg"')),
        "config of another model": lambda w: (
            (w / "training.json").write_text((w / "training.json").read_text().replace('"st-attention"', '"frame-avg"')),
            (w / "config.json").write_text((w / "config.json").read_text().replace(
                "TemporalAttentionDetector", "FrameAverageDetector"))),
    }
    for name, damage in damages.items():
        weights = tmp_path / name.replace(" ", "-")
        shutil.copytree(detector[0], weights)
        damage(weights)
        out = run_cli("verify", "--detector-weights", str(weights), clip)
        assert out.returncode == 66, (name, out.stderr)
        assert "unreadable detector weights" in out.stderr and out.stderr.strip().count("\n") == 0, name


def test_leave_one_out_tests_on_every_clip_of_the_left_out_value(mixed_corpus, tmp_path):
    from clipproof.detector.loo import leave_one_out
    from clipproof.records import read_manifest
    torch.manual_seed(0)
    settings = DetectorSettings(epochs=1, batch_size=8, patience=1, train_variants=("original", "crf35"))
    result = leave_one_out(mixed_corpus, "sampler", "frame-avg", tmp_path / "loo", settings, log=lambda m: None,
                           only=["dpm++"])["results"]["dpm++"]
    records = read_manifest(mixed_corpus)
    left_out = [r for r in records if r.variant == "original" and r.source.endswith("+dpm++")]
    # None of them was trained on, so all of them are tested (every split), against the real test clips.
    assert {r.split for r in left_out} > {"test"} and result["synthetic"] == len(left_out)
    assert result["real"] == sum(r.label == "real" and r.split == "test" and r.variant == "original" for r in records)
    info = json.loads((tmp_path / "loo" / "sampler-dpmpp" / "training.json").read_text())
    assert info["train_clips"] == sum(r.split == "train" and not r.source.endswith("+dpm++") for r in records)


@pytest.mark.slow      # two trainings
def test_leave_one_out_runs_give_their_mean_range_and_worst_case(mixed_corpus, tmp_path):
    from clipproof.detector.loo import leave_one_out
    settings = DetectorSettings(epochs=1, batch_size=8, patience=1, train_variants=("original",), seed=3)
    record = leave_one_out(mixed_corpus, "sampler", "frame-avg", tmp_path / "loo", settings, log=lambda m: None,
                           only=["ddim"], runs=2)
    result = record["results"]["ddim"]
    runs = result["runs"]
    assert record["runs"] == 2 and [r["seed"] for r in runs] == [3, 4]
    # Each run is its own training, kept in its own folder (the first under a single run's name).
    for folder, seed in (("sampler-ddim", 3), ("sampler-ddim-seed4", 4)):
        assert json.loads((tmp_path / "loo" / folder / "training.json").read_text())["settings"]["seed"] == seed
    assert result["auc"] == pytest.approx(sum(r["auc"] for r in runs) / 2)
    assert result["auc_range"] == [min(r["auc"] for r in runs), max(r["auc"] for r in runs)]
    assert result["synthetic_at_or_below_low"] == max(r["synthetic_at_or_below_low"] for r in runs)
    assert result["synthetic"] == runs[0]["synthetic"] == runs[1]["synthetic"]
    # The two runs as one detector: their saved models, scored again here, averaged per segment.
    from sklearn.metrics import roc_auc_score

    from clipproof.detector.loo import axis_value
    from clipproof.detector.train import segments_of
    test = ClipDataset(mixed_corpus, None)
    test.records = [r for r in test.records
                    if (r.label == "real" and r.split == "test") or axis_value(r, "sampler") == "ddim"]
    probabilities = []
    for folder in ("sampler-ddim", "sampler-ddim-seed4"):
        model, _, cal = load_weights(tmp_path / "loo" / folder)
        logits, y = segments_of(*predict_logits(model, test), 1)
        probabilities.append(cal.probability(logits))
    assert result["ensemble"]["members"] == 2
    assert result["ensemble"]["auc"] == pytest.approx(roc_auc_score(y, np.mean(probabilities, axis=0)))


def test_bad_output_folder_split_and_training_numbers_are_one_line(detector, mixed_corpus, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    corpus, weights = str(mixed_corpus), str(detector[0])
    real_only = tmp_path / "real-only"                  # a corpus whose test split has no synthetic clip
    real_only.mkdir()
    (real_only / "manifest.jsonl").write_text("".join(
        json.dumps({**json.loads(line), "path": str(mixed_corpus / json.loads(line)["path"])}) + "\n"
        for line in (mixed_corpus / "manifest.jsonl").read_text().splitlines() if '"real"' in line))
    cases = [
        (["train", "--corpus", corpus, "--out", str(a_file), "--epochs", "1"], 73, "exists and is not a folder"),
        (["eval", "--corpus", corpus, "--weights", weights, "--out", str(a_file)], 73, "exists and is not a folder"),
        (["eval", "--corpus", str(real_only), "--weights", weights], 64, "needs both real and synthetic clips"),
        (["eval", "--corpus", corpus, "--weights", weights, "--split", "nope"], 64, "invalid choice: 'nope'"),
        (["train", "--corpus", corpus, "--out", str(tmp_path / "t"), "--epochs", "0"], 64, "--epochs must be at least 1"),
        (["train", "--corpus", corpus, "--out", str(tmp_path / "t"), "--ema", "1"], 64, "--ema must be"),
        (["train", "--corpus", corpus, "--out", str(tmp_path / "t"), "--lr", "-1"], 64, "--lr must be above 0"),
        (["train", "--corpus", corpus, "--out", str(tmp_path / "t"), "--train-variants", ","], 64,
         "--train-variants must name"),
        (["train", "--corpus", corpus, "--out", str(tmp_path / "t"), "--train-variants", "original,gif256"], 64,
         "the corpus has no gif256 clips (it has crf35, original)"),
    ]
    for args, code, text in cases:
        out = run_cli("clipproof", "detector", *args)
        assert out.returncode == code, (args, out.stderr)
        assert text in out.stderr and out.stderr.strip().count("\n") == 0, (args, out.stderr)
    assert a_file.read_text() == "keep me"


def test_leave_one_out_axes_name_every_variant(mixed_corpus):
    from clipproof.detector.loo import axis_value
    records = ClipDataset(mixed_corpus, "train").records + ClipDataset(mixed_corpus, "test").records
    synthetic = [r for r in records if r.label == "synthetic"]
    assert {axis_value(r, "sampler") for r in synthetic} == {"ddim", "dpm++"}
    assert {axis_value(r, "mode") for r in synthetic} == {"t2v", "i2v", "extend"}
    assert all(axis_value(r, "generator") is None for r in records if r.label == "real")


def test_metadata_alone_is_at_chance(mixed_corpus):
    out = run_process("clipproof", "detector", "check-metadata", "--corpus", str(mixed_corpus))
    result = json.loads(out.stdout)
    assert result["accuracy"] <= result["majority_rate"] + 0.1


@pytest.mark.slow      # four clips of the bundled generator, 25 steps each
def test_bundled_weights_flag_most_clips_of_the_bundled_generator(tmp_path, keys):
    from clipproof.detector.inference import load_detector
    from clipproof.generator.generate import GenerateOptions, bundled_configs, generate, load_generator
    from clipproof.provenance.keys import load_identity
    detector = load_detector()
    if detector is None or not bundled_configs():
        pytest.skip("no bundled detector or generator weights in this checkout")
    gen = load_generator()
    records = generate(gen, GenerateOptions(n=4, steps=25, seed=3), tmp_path, load_identity(keys.key, keys.chain))
    from clipproof.media import probe
    scores = [detector.score(tmp_path / r.path, probe(tmp_path / r.path)).p_synthetic for r in records]
    # Its test split flags 83-100 % of each bundled generator's clips (the model card): most, not all.
    assert sum(p >= detector.calibration.high for p in scores) >= 3, scores


def test_bundled_weights_on_phone_footage_say_what_they_cannot_tell():
    # Footage nobody here made (the c2pa-rs project's unsigned test video, a handheld phone clip):
    # with no credentials the detector alone decides. It must not call a camera clip generated,
    # and it may call it "likely real" only if its recall on unseen generators was measured and
    # every segment scores at or below `low`; otherwise the report says why it cannot tell.
    from clipproof.detector.inference import load_detector
    if load_detector() is None:
        pytest.skip("no bundled detector weights in this checkout")
    report = run_cli("clipproof", "verify", "--json", str(FIXTURES / "video1_no_manifest.mp4"))
    result = json.loads(report.stdout)
    d = result["detector"]
    assert d["p_synthetic"] < d["thresholds"]["high"] and not d["shortfalls"]
    if d["calls_real"] and max(s["p_synthetic"] for s in d["segments"]) <= d["thresholds"]["low"]:
        assert result["verdict"] == "likely-real" and report.returncode == 0
    else:
        assert result["verdict"] == "uncertain" and report.returncode == 2
        assert any("does not call clips likely real" in r or "is undecided" in r for r in result["reasons"])
    assert d["frames_used"] == 16 * len(d["segments"])
    assert d["seconds_scored"] == pytest.approx(d["duration_s"], abs=0.05)      # a 2-second clip: all of it
    assert "wild-dev" in d["trained_on"]


@pytest.mark.parametrize("source, options", [("smptebars", ""), ("testsrc2", ""), ("life", ":mold=10:ratio=0.5:seed=1"),
                                             ("mandelbrot", "")])
def test_bundled_weights_do_not_call_test_patterns_or_motion_graphics_synthetic(source, options, tmp_path):
    # Pictures no camera and no generator made, drawn by FFmpeg's own test sources: colour bars,
    # a moving test card, cellular automata, a fractal zoom. "Not a camera" is not "generated":
    # none may come out likely-synthetic, and where the score is high, the out-of-distribution
    # check must be what says so.
    from clipproof.detector.inference import load_detector
    from clipproof.media import write_mp4
    from tools.render_sources import render
    detector = load_detector()
    if detector is None:
        pytest.skip("no bundled detector weights in this checkout")
    clip = write_mp4(render(source, options, (320, 240), noise=0, frames=32), tmp_path / "t.mp4", fps=24)
    report = Verifier(detector=detector).verify(clip)
    d = report.detector
    assert report.verdict in ("uncertain", "likely-real"), (report.verdict, d.p_synthetic)
    if d.p_synthetic >= d.thresholds["high"]:
        assert d.out_of_distribution
        assert any("unlike anything the detector was trained on" in r for r in report.reasons)


def test_model_card_names_each_shortfall(detector, mixed_corpus, tmp_path, capsys):
    import shutil

    from tools.detector_card import card
    weights = tmp_path / "weights"
    shutil.copytree(detector[0], weights)
    result = evaluate(weights, mixed_corpus, weights / "eval")
    text = card(weights, None, [], None, "build", "train")
    assert "| overall |" in text and "train" in text
    assert "input: each frame, beside its difference from the previous frame)" in text
    assert "Calls clips likely real: no — its recall on generators it was not trained on is unmeasured" in text
    assert "## Intended use" in text and "## Not for" in text
    loo = {"axis": "generator", "epochs": 2, "patience": 1,
           "results": {"X": {"auc": 0.8, "ap": 0.7, "tnr_at_high": 1.0, "tpr_at_high": 0.1, "synthetic_at_or_below_low": 0.25}}}
    assert "| generator = X | 2 epochs, patience 1 | 0.800 | 0.700 | 1.000 | 0.100 | 0.250 |" in card(
        weights, None, [loo], None, "build", "train")
    # Several training runs: their mean, and the range beside it.
    loo["results"]["X"].update(auc_range=[0.7, 0.9], runs=[{"seed": 0}, {"seed": 1}])
    assert "| generator = X | 2 epochs, patience 1 | 0.800 (runs: 0.700–0.900, 2 runs) | 0.700 |" in card(
        weights, None, [loo], None, "build", "train")
    loo["results"]["X"]["ensemble"] = {"members": 2, "auc": 0.95, "ap": 0.9, "eer": 0.1}
    assert "| 0.800 (runs: 0.700–0.900, 2 runs; together 0.950) |" in card(weights, None, [loo], None, "build", "train")
    # Rewrite the held-out real figure both ways: the card must name a miss and stay quiet otherwise.
    for fpr, named in ((0.25, True), (0.0, False)):
        result["held_out_real"].update(clips=8, false_positive_rate_at_high=fpr)
        (weights / "eval" / "eval.json").write_text(json.dumps(result))
        text = card(weights, None, [], None, "build", "train")
        assert ("Held-out real footage: 2 of 8 clips score above `high`" in text) is named
    text = card(weights, None, [], None, "build", "train", known_limits=["Calls rendered graphics synthetic."])
    assert "- Calls rendered graphics synthetic." in text.split("## Limits")[1]
    # A misspelt results file is an error with its name, and the card on disk is left as it was.
    before = (weights / "MODEL_CARD.md").read_text() if (weights / "MODEL_CARD.md").exists() else None
    from tools.detector_card import main
    code = main(["--weights", str(weights), "--loo", str(tmp_path / "loo-typo.json"),
                 "--corpus-command", "c", "--train-command", "t"])
    assert code == 66 and "loo-typo.json: no such file" in capsys.readouterr().err
    assert ((weights / "MODEL_CARD.md").read_text() if (weights / "MODEL_CARD.md").exists() else None) == before


# DDP on CPU: every rank normalises its own share (no SyncBatchNorm there), so the model for this
# check takes group norm, and no dropout; everything else is the training code as it runs.
DDP_KWARGS = {"backbone_norm": "group", "dropout": 0.0}


def ddp_detector_run(corpus: str, out: str) -> None:
    settings = DetectorSettings(epochs=2, batch_size=8, lr=2e-3, patience=5)
    train_detector(ClipDataset(corpus, "train", augment=Augment(flip=0.5)), ClipDataset(corpus, "val"),
                   "st-attention", out, settings, DDP_KWARGS, progress=False, log=lambda m: None)


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one(mixed_corpus, tmp_path):
    from conftest import run_ddp
    ddp_detector_run(str(mixed_corpus), str(tmp_path / "one"))
    run_ddp("test_detector:ddp_detector_run", corpus=str(mixed_corpus), out=str(tmp_path / "two"))
    one, two = (json.loads((tmp_path / f / "training.json").read_text()) for f in ("one", "two"))
    for a, b in zip(one["history"], two["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        # The validation loss after each epoch shows the weights agree too (Adam's step on a
        # near-zero gradient can differ in sign at float rounding, so tensors are not compared).
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-3)


def test_metadata_check_flags_a_corpus_that_leaks_the_label(tmp_path):
    # Positive control: real clips at 12 fps and 16 frames, synthetic at 24 fps and 8 frames. The
    # pixels are alike (the same kind of noise); the container alone gives the label away.
    from clipproof.detector.shortcuts import metadata_check
    from clipproof.media import write_mp4
    from clipproof.records import ClipRecord, write_manifest
    rng = np.random.default_rng(0)
    records = []
    for i in range(40):
        label = "real" if i % 2 == 0 else "synthetic"
        fps, frames = (12.0, 16) if label == "real" else (24.0, 8)
        path = write_mp4(rng.integers(0, 256, (frames, 16, 16, 3), dtype=np.uint8), tmp_path / f"c{i}.mp4", fps=fps)
        records.append(ClipRecord(id=f"c{i}", path=path.name, sha256="", label=label, source=f"s{i}",
                                  generator=None if label == "real" else "g", mode=None,
                                  split="train" if i < 28 else "test", frames=frames, fps=fps, width=16,
                                  height=16, codec="h264", crf=18, parent_id=None, seed=i))
    write_manifest(records, tmp_path / "manifest.jsonl")
    result = metadata_check(tmp_path)
    assert result["accuracy"] >= 0.9 and result["accuracy"] > result["majority_rate"] + 0.3


def test_segments_cover_a_clip_and_spread_over_a_long_one():
    from clipproof.detector.inference import MAX_SEGMENTS, MIN_SEGMENTS, load_detector
    from clipproof.media import MediaInfo
    detector = load_detector()
    if detector is None:
        pytest.skip("no bundled detector weights in this checkout")

    def media(seconds: float, fps: float = 30.0, size: tuple[int, int] = (640, 360)) -> MediaInfo:
        return MediaInfo("mp4", "h264", *size, fps, round(seconds * fps), seconds, False)
    ten = detector.segments(media(10.0))
    assert ten[0][0] == 0.0 and ten[-1][1] == pytest.approx(10.0, abs=0.01)
    assert all(b[0] <= a[1] + 1e-6 for a, b in zip(ten, ten[1:]))            # end to end: every second scored
    long = detector.segments(media(120.0))
    assert len(long) == MAX_SEGMENTS and long[0][0] < 5 and long[-1][1] > 115      # spread over the whole clip
    assert detector.segments(media(0.2)) == [(0.0, round(16 / 30, 3))]             # shorter than a segment
    # With a keyframe every second, each of a long clip's segments starts at one, inside its part.
    keyed = detector.segments(media(120.0), keyframes=[float(k) for k in range(120)])
    parts = np.linspace(0.0, 120.0, MAX_SEGMENTS + 1)
    assert all(a == int(a) and lo <= a and b <= hi for (a, b), lo, hi in zip(keyed, parts, parts[1:]))
    first_only = detector.segments(media(120.0), keyframes=[0.0])
    assert first_only[0][0] == 0.0 and first_only[1:] == long[1:]              # parts without one: centred
    assert detector.segments(media(10.0), keyframes=[0.0, 5.0]) == ten       # tiled: keyframes do not matter
    # Large frames get fewer segments (what they decode stays within the budget), with gaps.
    hd = detector.segments(media(10.0, size=(1920, 1080)))
    assert len(hd) == 8 and hd[0][0] > 0 and hd[-1][1] < 10.0 and detector.spread(media(10.0, size=(1920, 1080)))
    assert len(detector.segments(media(10.0, size=(3840, 2160)))) == MIN_SEGMENTS
    assert len(detector.segments(media(10.0, size=(1280, 720)))) == 18
    # A part with no keyframe that leaves its segment inside starts at one that starts in it
    # (running into the next part), never at one whose segment would pass the clip's end.
    phone = detector.segments(media(10.0, size=(1920, 1080)), keyframes=[round(k * 0.967, 3) for k in range(11)])
    assert phone[4][0] == 5.802 and phone[4][0] + 16 / 30 > 6.25         # the part [5, 6.25): 5.802 runs past it
    assert phone[-1] == hd[-1]                                           # 9.67 + 0.53 s would end past 10 s: centred


def test_whole_clip_scores_every_stretch_whatever_the_frame_size(tmp_path, monkeypatch):
    # Large frames get fewer segments (the decode budget); `verify --whole-clip` tiles the clip
    # anyway. A budget of one pixel makes this small clip "large": it gets MIN_SEGMENTS.
    from conftest import run_cli

    from clipproof.demo import moving_scene
    from clipproof.detector import inference
    from clipproof.media import write_mp4
    if inference.load_detector() is None:
        pytest.skip("no bundled detector weights in this checkout")
    clip = write_mp4(moving_scene(96, 96, 64), tmp_path / "clip.mp4", fps=12)       # 8 s: 6 segments of 16 frames
    monkeypatch.setattr(inference, "DECODE_BUDGET_PIXELS", 1)
    budgeted, whole = (json.loads(run_cli("verify", "--json", *flag, str(clip)).stdout)["detector"]
                       for flag in ([], ["--whole-clip"]))
    assert len(budgeted["segments"]) == inference.MIN_SEGMENTS and budgeted["seconds_scored"] < 6.0
    assert len(whole["segments"]) == 6 and whole["seconds_scored"] == 8.0 and whole["frames_used"] == 96


@pytest.mark.slow      # an 810-frame clip, encoded and read
def test_a_long_clip_is_read_from_its_keyframes(tmp_path, monkeypatch):
    from clipproof import media
    from clipproof.demo import moving_scene
    from clipproof.detector.inference import load_detector
    detector = load_detector()
    if detector is None:
        pytest.skip("no bundled detector weights in this checkout")
    # 27 s: 24 parts of 1.125 s, each with room for a segment (0.53 s) to start at a keyframe;
    # one every 16 frames, at times no millisecond rounding hits (0.5333… s).
    # x264's veryfast reorders frames: the index's keyframe times are not their display times.
    clip = media.write_mp4(moving_scene(810, 64, 64), tmp_path / "long.mp4", fps=30, keyint=16, preset="veryfast",
                           reproducible=False)
    keyframes = media.keyframe_times(clip)
    assert keyframes[0] == 0.0 and len(keyframes) >= 50 and max(np.diff(keyframes)) <= 16 / 30 + 1e-6
    # Decoding the segments' own frames (16 each) and no more: read from the keyframe before
    # them, as when centred in their parts, when a start rounded down to the millisecond seeks
    # one keyframe early, or when a keyframe's decoding time was taken for its display time,
    # takes 546-648 frames here; finding each segment's end by the frame after it, 24 more.
    monkeypatch.setattr(media, "MAX_DECODED_FRAMES", 24 * 16)
    findings = detector.score(clip, media.probe(clip))
    assert len(findings.segments) == 24 and all(s.start_s in [round(k, 3) for k in keyframes] for s in findings.segments)


def test_segments_are_scored_while_the_next_ones_decode(tmp_path, monkeypatch):
    """The model scores each batch of segments in a second thread as decoding goes on (a whole
    verify of a 10 s 1080p clip: 2.8-3.0 -> 2.7-2.8 s on 2 cores), with the scores of reading
    every segment first, in the segments' order whatever order they come in."""
    import threading

    from clipproof import media
    from clipproof.demo import moving_scene
    from clipproof.detector.inference import ROWS, load_detector
    detector = load_detector()
    if detector is None:
        pytest.skip("no bundled detector weights in this checkout")
    clip = media.write_mp4(moving_scene(96, 96, 64), tmp_path / "clip.mp4", fps=12)
    info = media.probe(clip)
    segments = detector.segments(info)[::-1]            # not in time order
    assert len(segments) * detector.crops > 2 * ROWS
    batch = detector.run(detector.read_segments(clip, info, segments))

    started = threading.Event()
    rows, run = detector._segment_rows, detector._run

    def decoding(*args, **kwargs):
        for n, item in enumerate(rows(*args, **kwargs)):
            yield item
            if (n + 1) * detector.crops == ROWS:       # the first call's rows are out: it must start now
                assert started.wait(30), "the model waited for every segment to decode"

    def scoring(x):
        assert threading.current_thread() is not threading.main_thread()
        started.set()
        return run(x)
    monkeypatch.setattr(detector, "_segment_rows", decoding)
    monkeypatch.setattr(detector, "_run", scoring)
    decoded, logits, embeddings = detector._read_and_run(clip, info, segments)
    assert decoded == list(range(len(segments)))
    np.testing.assert_allclose(logits, batch[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(embeddings, batch[1], rtol=0, atol=1e-5)


def test_a_synthetic_stretch_decides_and_is_named():
    from clipproof.findings import DetectorFindings, Segment
    from clipproof.provenance.read import Credentials
    from clipproof.provenance.report import decide
    scores = [0.01, 0.02, 0.9, 0.95, 0.03, 0.01, 0.02, 0.01]       # the mean (0.24) would call it real
    findings = DetectorFindings("m", "1", max(scores), {"low": 0.3, "high": 0.8},
                                [Segment(float(i), float(i + 1), p) for i, p in enumerate(scores)], 128,
                                seconds_scored=8.0, duration_s=8.0)
    verdict, reasons = decide(Credentials(state="absent"), findings)
    assert verdict == "likely-synthetic"
    assert any("scores 2–4 s as likely synthetic" in r for r in reasons)
    assert any("scored 8 s of 8 s (8 segments)" in r for r in reasons)
    low = DetectorFindings("m", "1", 0.05, {"low": 0.3, "high": 0.8}, [Segment(0.0, 1.0, 0.05)], 16)
    assert decide(Credentials(state="absent"), low)[0] == "likely-real"
    muted = DetectorFindings(**{**low.__dict__, "calls_real": False, "calls_real_note": "measured: too low"})
    verdict, reasons = decide(Credentials(state="absent"), muted)
    assert verdict == "uncertain" and "measured: too low" in reasons[-1]
    # A long clip's score is discounted for its many segments; "likely real" still needs every one low.
    discounted = DetectorFindings("m", "1", 0.05, {"low": 0.3, "high": 0.8},
                                  [Segment(0.0, 1.0, 0.05), Segment(1.0, 2.0, 0.6)], 32, calls_real=True)
    verdict, reasons = decide(Credentials(state="absent"), discounted)
    assert verdict == "uncertain" and reasons[-1] == (
        "The detector is undecided: its highest segment scores 0.60, inside the uncertain band 0.30 to 0.80 "
        "(p_synthetic 0.05 for the clip, discounted for its 2 segments).")
    # One segment above `high` that the discount brings the clip under: not said to be inside the band.
    above = DetectorFindings(**{**discounted.__dict__, "p_synthetic": 0.7,
                                "segments": [Segment(0.0, 1.0, 0.05), Segment(1.0, 2.0, 0.85)]})
    verdict, reasons = decide(Credentials(state="absent"), above)
    assert verdict == "uncertain" and "scores 0.85, above 0.80, but real clips of 2 segments often" in reasons[-1]


def test_a_clip_too_short_and_too_small_is_scored_on_what_there_is(detector, tmp_path):
    from clipproof.demo import moving_scene
    from clipproof.media import write_mp4
    weights = weights_copy(detector[0], tmp_path / "native")    # the fixture's model, cutting 16x16 crops
    info = json.loads((weights / "training.json").read_text())
    (weights / "training.json").write_text(json.dumps({**info, "input": "native", "crops": 2}))
    tiny = write_mp4(moving_scene(3, 12, 10), tmp_path / "tiny.mp4", fps=12)
    out = run_cli("verify", "--json", "--detector-weights", str(weights), str(tiny))
    row = json.loads(out.stdout)
    assert out.returncode in (0, 1, 2) and len(row["detector"]["shortfalls"]) == 2, out.stderr
    said = " ".join(row["reasons"])
    assert "3 frames, fewer than the 8 of a segment" in said and "(12x10) are smaller than the detector's 16x16" in said
    # The padded segment ends with the clip (3 frames at 12 fps), not 8 frames on.
    assert [(s["start_s"], s["end_s"]) for s in row["detector"]["segments"]] == [(0.0, 0.25)]
    roomy = write_mp4(moving_scene(24, 64, 48), tmp_path / "roomy.mp4", fps=12)
    assert json.loads(run_cli("verify", "--json", "--detector-weights", str(weights), str(roomy)).stdout)[
        "detector"]["shortfalls"] == []


@pytest.mark.slow      # the bundled model over a folder, twice
def test_eval_on_a_folder_of_labelled_clips(tmp_path):
    from clipproof.demo import moving_scene
    from clipproof.detector.folder_eval import evaluate_folder
    from clipproof.detector.inference import load_detector
    from clipproof.media import write_mp4
    if load_detector() is None:
        pytest.skip("no bundled detector weights in this checkout")
    folder = tmp_path / "labelled"
    for kind, names in (("real", ["cam__a", "cam__b", "phone__c"]), ("synthetic", ["genx__a", "genx__b", "geny__c"]),
                        ("rendered", ["cartoon"]), ("orig", ["ignored"])):
        (folder / kind).mkdir(parents=True)
        for i, name in enumerate(names):
            write_mp4(moving_scene(24, 64, 48, seed=sum(map(ord, name))), folder / kind / f"{name}.mp4", fps=12)
    notes: list[str] = []
    result = evaluate_folder(folder, out=tmp_path / "eval", log=notes.append)
    assert any("orig" in n for n in notes)
    assert result["overall"]["real"] == 4 and result["overall"]["synthetic"] == 3
    assert set(result["per_generator"]) == {"genx", "geny"} and set(result["per_real_source"]) == {"cam", "phone", "rendered"}
    assert {"auc", "ap", "recall_at_fpr_0.01", "recall_at_fpr_0.05", "ece"} <= set(result["overall"])
    assert result["rendered"]["clips"] == 1 and result["format_only"]["auc"] is not None
    assert (tmp_path / "eval" / "eval.md").read_text().startswith("| subset |")
    (folder / "manifest.tsv").write_text("file\tlabel\tgenerator_or_source\nreal/cam__a.mp4\treal\tcam\n"
                                         "synthetic/genx__a.mp4\tsynthetic\tGenX\n")
    assert set(evaluate_folder(folder, log=notes.append)["per_generator"]) == {"GenX"}
    only_real = tmp_path / "only-real"
    (only_real / "real").mkdir(parents=True)
    write_mp4(moving_scene(24, 64, 48), only_real / "real" / "a.mp4", fps=12)
    with pytest.raises(UsageError, match="needs both"):
        evaluate_folder(only_real)
    # A short row, an empty file name, a manifest that is not UTF-8: internal errors before.
    from clipproof.datasets.labelled import labelled_clips
    for body, said in ((b"file\tlabel\nreal/cam__a.mp4\treal\nclips/cam__a.mp4\n", "line 3: a row needs"),
                       (b"file\tlabel\nreal/cam__a.mp4\treal\n\tfoo\n", "line 3: a row needs"),
                       (b"file\tlabel\ncaf\xe9.mp4\treal\n", "not UTF-8")):
        (folder / "manifest.tsv").write_bytes(body)
        with pytest.raises(UsageError, match=said):
            labelled_clips(folder)


@pytest.mark.slow      # scores a 720p clip
def test_eval_parity_scores_each_label_in_the_other_labels_format(tmp_path):
    from clipproof.demo import moving_scene
    from clipproof.detector.folder_eval import evaluate_folder, labelled_clips, parity_clips
    from clipproof.detector.inference import load_detector
    from clipproof.media import probe, write_mp4
    if load_detector() is None:
        pytest.skip("no bundled detector weights in this checkout")
    folder = tmp_path / "labelled"
    for kind, name, (w, h), frames in (("real", "cam__a", (1024, 64), 36), ("real", "cam__b", (96, 64), 12),
                                       ("synthetic", "genx__a", (128, 96), 8)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        # Small and short where the sizes allow: x264 takes half a minute on a noisy 720p scene (and
        # GIF dither is noise too). The wide strip still has its GIF forms fitted into 512 px.
        write_mp4(moving_scene(frames, w, h, seed=len(name)), folder / kind / f"{name}.mp4", fps=12, preset="ultrafast")
    clips = labelled_clips(folder)
    derived = parity_clips(clips, tmp_path / "work")
    sizes = {(c.path.stem[:4], c.form): (m.width, m.height, m.frames) for c, m in zip(derived, map(probe, (c.path for c in derived)))}
    # The large real clip: its first 2 s, fitted into 512 px; the small one keeps its size.
    assert sizes == {("0000", "gif"): (512, 32, 24), ("0000", "gif-ordered"): (512, 32, 24),
                     ("0001", "gif"): (96, 64, 12), ("0001", "gif-ordered"): (96, 64, 12), ("0002", "720p"): (960, 720, 8)}
    result = evaluate_folder(folder, parity=True)
    assert result["overall"]["real"] == 2 and result["overall"]["synthetic"] == 1
    gif, up = result["parity"]["real_as_gif"], result["parity"]["synthetic_at_720p"]
    assert {c["form"] for c in gif["clips"]} == {"gif", "original"} and gif["overall"]["real"] == 2
    # A row in another form names the clip it was made from (its temporary file is gone).
    assert all(Path(c["path"]).is_file() and Path(c["path"]).parent.parent == folder for c in gif["clips"])
    assert {c["form"] for c in result["parity"]["real_as_ordered_gif"]["clips"]} == {"gif-ordered", "original"}
    assert {(c["label"], c["form"]) for c in up["clips"]} == {("real", "original"), ("synthetic", "720p")}
    assert {c["form"] for c in result["clips"]} == {"original"}


def test_onnx_export_scores_as_torch_does_and_a_stale_one_is_ignored(clip, tmp_path):
    import shutil

    from clipproof.detector.inference import DEFAULT_WEIGHTS, Detector
    from clipproof.detector.weights import ONNX_FILE
    from clipproof.media import probe
    from tools.export_onnx import QUANTIZED_MAX, QUANTIZED_MEAN
    if not (DEFAULT_WEIGHTS / ONNX_FILE).is_file():
        pytest.skip("no bundled ONNX export in this checkout")
    onnx, torch_ = Detector(DEFAULT_WEIGHTS, "onnx"), Detector(DEFAULT_WEIGHTS, "torch")
    assert onnx.backend == "onnx" and onnx.model is None and torch_.backend == "torch"
    media = probe(clip)
    x = onnx.read_segments(clip, media, onnx.segments(media))
    gap = np.abs(onnx.logits(x) - torch_.logits(x))
    if onnx.quantized:
        # int8 convolutions: its logits stay within the bounds the export tool checks on
        # validation clips, and its out-of-distribution check is its own.
        assert gap.mean() <= QUANTIZED_MEAN and gap.max() <= QUANTIZED_MAX, gap
        assert onnx.ood.threshold != torch_.ood.threshold
    else:
        # A float export (no int8 form stayed within those bounds): torch's logits, torch's check.
        assert gap.max() <= 1e-4 and onnx.ood.threshold == torch_.ood.threshold, gap
    a, b = onnx.score(clip, media), torch_.score(clip, media)
    assert [s.start_s for s in a.segments] == [s.start_s for s in b.segments]
    assert abs(a.p_synthetic - b.p_synthetic) < 0.05
    # Weights retrained into the folder (other tensors) must not be scored by the old export.
    stale = tmp_path / "w"
    shutil.copytree(DEFAULT_WEIGHTS, stale)
    with open(stale / MODEL_TENSORS, "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\0")
    assert Detector(stale).backend == "torch"
    with pytest.raises(UsageError, match="no ONNX export matching"):
        Detector(stale, "onnx")


@pytest.mark.slow
def test_export_tool_writes_a_matching_model(detector, mixed_corpus, tmp_path):
    import shutil

    from clipproof.datasets.dataset import ClipDataset
    from clipproof.detector.inference import Detector
    from clipproof.detector.ood import INT8_OOD_FILE
    from tools.export_onnx import QUANTIZED_MAX, QUANTIZED_MEAN, export, quantize
    folder = tmp_path / "w"
    shutil.copytree(detector[0], folder)
    path, worst = export(folder)
    assert path.is_file() and worst < 1e-4
    float_detector = Detector(folder)
    assert float_detector.backend == "onnx" and not float_detector.quantized
    mean, largest, what = quantize(folder, mixed_corpus)
    assert what.startswith("int8 convolutions")
    int8 = Detector(folder)
    assert int8.backend == "onnx" and int8.quantized and mean <= QUANTIZED_MEAN and largest <= QUANTIZED_MAX
    test = np.stack([ClipDataset(mixed_corpus, "test")[i][0].numpy() for i in range(8)])
    gap = np.abs(int8.logits(test) - float_detector.logits(test)) / float_detector.calibration.temperature
    assert gap.max() <= QUANTIZED_MAX
    # Its own out-of-distribution check, fitted on its embeddings; without it the export is not used.
    assert int8.ood is not None and int8.ood.threshold != float_detector.ood.threshold
    (folder / INT8_OOD_FILE).unlink()
    assert Detector(folder).backend == "torch"


@pytest.mark.slow
def test_verify_with_the_onnx_detector_never_imports_torch(clip):
    import subprocess
    import sys

    from clipproof.detector.inference import DEFAULT_WEIGHTS
    from clipproof.detector.weights import ONNX_FILE
    if not (DEFAULT_WEIGHTS / ONNX_FILE).is_file():
        pytest.skip("no bundled ONNX export in this checkout")
    code = ("import sys; from clipproof.cli import verify_main; code = verify_main(['--json', sys.argv[1]]); "
            "print('torch' in sys.modules, 'onnxruntime' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", code, str(clip)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False True 2"        # a rendered scene: uncertain
    assert json.loads(out.stdout.splitlines()[0])["detector"]["model"] == "st-attention-npr"


def test_a_clip_unlike_the_training_data_is_uncertain():
    from clipproof.findings import DetectorFindings, Segment
    from clipproof.provenance.read import Credentials
    from clipproof.provenance.report import decide
    far = DetectorFindings("m", "1", 0.99, {"low": 0.3, "high": 0.8}, [Segment(0.0, 1.0, 0.99)], 16,
                           ood_distance=40.0, ood_threshold=12.5)
    verdict, reasons = decide(Credentials(state="absent"), far)
    assert far.out_of_distribution and verdict == "uncertain"
    assert "unlike anything the detector was trained on" in reasons[-1]
    near = DetectorFindings(**{**far.__dict__, "ood_distance": 3.0})
    assert decide(Credentials(state="absent"), near)[0] == "likely-synthetic"


@pytest.mark.slow
def test_training_fits_the_out_of_distribution_check(detector, mixed_corpus, tmp_path):
    from clipproof.detector.inference import Detector
    from clipproof.detector.ood import OOD_FILE
    from clipproof.media import probe, write_mp4
    from clipproof.records import read_manifest
    folder, _ = detector
    assert (folder / OOD_FILE).is_file()
    scorer = Detector(folder, "torch")
    test_clip = next(mixed_corpus / r.path for r in read_manifest(mixed_corpus) if r.split == "test")
    # Whole frames flashing black and white: no camera and no generator of the corpus made that.
    flashing = np.stack([np.full((64, 64, 3), 255 * (i % 2), np.uint8) for i in range(24)])
    far_clip = write_mp4(flashing, tmp_path / "flashing.mp4", fps=12)
    near, far = (scorer.score(p, probe(p)) for p in (test_clip, far_clip))
    assert near.ood_threshold == far.ood_threshold > 0
    assert not near.out_of_distribution and far.out_of_distribution
