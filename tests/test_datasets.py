"""Corpora: sources, splits by footage, determinism, bad inputs, resume, the torch Dataset."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from clipproof.datasets.build import assign_splits, build_corpus
from clipproof.datasets.clips import ClipSpec, cut_windows, window_starts
from clipproof.datasets.dataset import Augment, ClipDataset, collate_clips
from clipproof.datasets.info import corpus_counts, render_counts
from clipproof.datasets.recipe import load_recipe, recipe_from_dict
from clipproof.datasets.sources import Source, folder_sources, still_sources
from clipproof.demo import moving_scene
from clipproof.errors import UsageError
from clipproof.media import write_mp4
from clipproof.records import read_manifest


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """A folder of 'user videos': five scenes, one in two renditions, plus two broken files."""
    root = tmp_path_factory.mktemp("footage")
    (root / "trip").mkdir()
    for i in range(4):
        write_mp4(moving_scene(36, 80, 64, seed=i), root / ("trip" if i % 2 else ".") / f"scene{i}.mp4", fps=12)
    write_mp4(moving_scene(36, 80, 64, seed=9), root / "harbour_pristine.mp4", fps=12, crf=12)
    write_mp4(moving_scene(36, 80, 64, seed=9), root / "harbour_distorted.mp4", fps=12, crf=40)
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    whole = (root / "scene0.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) * 6 // 10])
    (root / "notes.txt").write_text("not a video")
    return root


def recipe_for(folder: Path, **clip) -> dict:
    return {"seed": 3, "clip": {"frames": 8, "width": 32, "height": 32, "windows": 3, **clip},
            "real": [{"kind": "folder", "path": str(folder)}],
            "variants": {"reencode_crf": [28], "downscale": [0.5], "center_crop": [0.8]}}


@pytest.fixture(scope="module")
def corpus(footage, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "c"
    build_corpus(recipe_from_dict(recipe_for(footage)), out, show_progress=False, log=lambda m: None)
    return out


def test_bad_inputs_are_skipped_with_reasons(corpus):
    log = (corpus / "build.log").read_text()
    for name in ("corrupt.mp4", "truncated.mp4", "notes.txt"):
        assert f"{name}:" in log, log
    sources = {r.source for r in read_manifest(corpus)}
    assert not any("corrupt" in s or "truncated" in s for s in sources)
    assert "folder:trip/scene1" in sources and "folder:harbour_pristine" in sources


def test_no_footage_crosses_splits(corpus):
    records = read_manifest(corpus)
    by_id = {r.id: r for r in records}
    split_of_group: dict[str, str] = {}
    for r in records:
        assert r.split in ("train", "val", "test")
        assert split_of_group.setdefault(r.group, r.split) == r.split
        if r.parent_id:
            assert by_id[r.parent_id].split == r.split
    # Two renditions of the same footage are one group.
    harbour = {r.group for r in records if r.source.startswith("folder:harbour")}
    assert harbour == {"folder:harbour"}
    assert set(split_of_group.values()) == {"train", "val", "test"}
    # Several windows per video, each with its variants.
    scene = [r for r in records if r.source == "folder:scene0"]
    assert len({r.start_s for r in scene}) == 3
    assert {r.variant for r in scene} == {"original", "crf28", "down0.5", "crop0.8"}


def test_clip_records_describe_the_files(corpus):
    from clipproof.digest import sha256_file
    from clipproof.media import probe
    for r in read_manifest(corpus)[:12]:
        info = probe(corpus / r.path)
        assert (info.width, info.height, info.frames) == (r.width, r.height, r.frames)
        assert sha256_file(corpus / r.path) == r.sha256 and r.label == "real" and r.generator is None


def test_same_recipe_same_manifest(footage, corpus, tmp_path):
    again = tmp_path / "again"
    build_corpus(recipe_from_dict(recipe_for(footage)), again, workers=2, show_progress=False, log=lambda m: None)
    assert (again / "manifest.jsonl").read_bytes() == (corpus / "manifest.jsonl").read_bytes()
    other_seed = tmp_path / "seed"
    build_corpus(recipe_from_dict({**recipe_for(footage), "seed": 4}), other_seed, show_progress=False,
                 log=lambda m: None)
    assert (other_seed / "manifest.jsonl").read_bytes() != (corpus / "manifest.jsonl").read_bytes()


def test_duplicate_clips_are_dropped(tmp_path):
    folder = tmp_path / "dupes"
    folder.mkdir()
    # 16 frames, two windows of 8: both copies are cut at the same places.
    clip = write_mp4(moving_scene(16, 64, 64, seed=1), folder / "a.mp4", fps=10)
    (folder / "b.mp4").write_bytes(clip.read_bytes())
    result = build_corpus(recipe_from_dict({"seed": 1, "clip": {"frames": 8, "width": 32, "height": 32, "windows": 2},
                                            "real": [{"kind": "folder", "path": str(folder)}]}),
                          tmp_path / "c", show_progress=False, log=lambda m: None)
    assert result.duplicates == 2 and len(result.records) == 2
    assert len({r.sha256 for r in result.records}) == 2
    # The same file under two names is one footage: one group.
    assert {r.group for r in result.records} == {"folder:a"}
    assert "duplicate folder-b-w0" in (tmp_path / "c" / "build.log").read_text()


def test_interrupted_build_resumes_to_the_same_manifest(footage, corpus, tmp_path):
    recipe_file = tmp_path / "r.json"
    recipe_file.write_text(json.dumps(recipe_for(footage)))
    out = tmp_path / "resumed"
    code = ("import json, sys; from clipproof.datasets.build import build_corpus; "
            "from clipproof.datasets.recipe import recipe_from_dict; "
            f"build_corpus(recipe_from_dict(json.load(open({str(recipe_file)!r}))), {str(out)!r}, show_progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    progress = out / ".progress.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (progress.is_file() and progress.read_text().count("\n") >= 1):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.jsonl").exists(), "the build finished before it could be interrupted"
    messages = []
    build_corpus(recipe_from_dict(recipe_for(footage)), out, show_progress=False, log=messages.append)
    resumed = [m for m in messages if m.startswith("resuming")]
    assert resumed and not resumed[0].startswith("resuming: 0")
    assert (out / "manifest.jsonl").read_bytes() == (corpus / "manifest.jsonl").read_bytes()


def test_refuses_another_recipe_in_the_same_folder(footage, corpus):
    with pytest.raises(UsageError, match="another recipe"):
        build_corpus(recipe_from_dict(recipe_for(footage, frames=4)), corpus, show_progress=False, log=lambda m: None)


def test_info_counts(corpus):
    counts = corpus_counts(corpus)
    assert sum(counts.values()) == len(read_manifest(corpus))
    table = render_counts(counts)
    assert "folder:scene0" in table and "crf28" in table and table.splitlines()[-1].startswith("all")


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_dataset_round_trip_psnr(tmp_path):
    video = write_mp4(moving_scene(30, 128, 96, seed=2), tmp_path / "v.mp4", fps=10, crf=10)
    source = Source("folder:v", "folder:v", "video", str(video))
    spec = ClipSpec(frames=8, width=64, height=48, windows=1, crf=18)
    window = next(cut_windows(source, spec, seed=0))
    out = tmp_path / "c"
    build_corpus(recipe_from_dict({"seed": 0, "clip": {"frames": 8, "width": 64, "height": 48, "windows": 1, "crf": 18},
                                   "real": [{"kind": "folder", "path": str(tmp_path)}]}),
                 out, show_progress=False, log=lambda m: None)
    x, label, record = ClipDataset(out)[0]
    assert x.shape == (8, 3, 48, 64) and x.dtype == torch.float32 and label == 0
    assert -1.0 <= x.min() and x.max() <= 1.0
    back = ((x.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    assert psnr(back, window.frames) >= 30


def test_dataloader_with_workers_and_seeded_augmentation(corpus):
    ds = ClipDataset(corpus, "train", variants=None, size=(32, 32),
                     augment=Augment(crop=0.5, flip=0.5, reencode=0.3), seed=7)
    assert {r.variant for r in ds.records} > {"original"}
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_clips)
    frames, labels, records = next(iter(loader))
    assert frames.shape == (4, 8, 3, 32, 32) and labels.tolist() == [0, 0, 0, 0] and len(records) == 4
    serial = torch.stack([ds[i][0] for i in range(4)])
    assert torch.equal(frames, serial)        # same draws whatever the worker count
    ds.set_epoch(1)
    assert not torch.equal(torch.stack([ds[i][0] for i in range(4)]), serial)


def test_sensor_noise_augmentation():
    from clipproof.datasets.dataset import _augment
    frames = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    noisy = _augment(frames, Augment(noise=1.0), np.random.default_rng(1))
    assert noisy.dtype == np.uint8 and noisy.shape == frames.shape
    diff = noisy.astype(int) - frames
    # Weak, and fresh in every frame, as a camera's sensor noise is.
    assert 0.5 < np.abs(diff).mean() < 4 and not np.array_equal(diff[0], diff[1])


def test_split_filter(corpus):
    records = read_manifest(corpus)
    for split in ("train", "val", "test"):
        ds = ClipDataset(corpus, split)
        assert len(ds) == sum(1 for r in records if r.split == split and r.variant == "original")


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------

def test_window_starts_do_not_overlap():
    rng = np.random.default_rng(0)
    for total, span, windows in [(100, 16, 3), (48, 16, 3), (47, 16, 3), (10, 16, 2)]:
        starts = window_starts(total, span, windows, rng)
        assert len(starts) == min(windows, total // span)
        ends = [s + span for s in starts]
        assert all(e <= total for e in ends) and all(a_end <= b for a_end, b in zip(ends, starts[1:]))


def test_still_pan_is_a_moving_real_photo():
    sources, _ = still_sources(["coffee"])
    assert [s.name for s in sources] == ["still-pan:coffee"] and sources[0].kind == "still"
    spec = ClipSpec(frames=8, width=64, height=48, windows=2)
    a = list(cut_windows(sources[0], spec, seed=1))
    b = list(cut_windows(sources[0], spec, seed=1))
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(a, b))
    assert not np.array_equal(a[0].frames, a[1].frames)
    motion = np.abs(np.diff(a[0].frames.astype(np.int16), axis=0)).mean()
    assert 1 < motion < 60


def test_folder_sources_group_renditions(footage):
    sources, skipped = folder_sources(footage)
    groups = {s.name: s.group for s in sources}
    assert groups["folder:harbour_pristine"] == groups["folder:harbour_distorted"] == "folder:harbour"
    assert {Path(s.path).name for s in skipped} == {"corrupt.mp4", "truncated.mp4", "notes.txt"}


def test_assign_splits_by_stratum():
    from clipproof.records import ClipRecord
    def rec(source, label="real"):
        return ClipRecord(id=source, path="", sha256=source, label=label, source=source, generator=None,
                          mode=None, split=None, frames=1, fps=1, width=2, height=2, codec="h264", crf=18,
                          parent_id=None, seed=0, group=source)
    records = [rec(f"v{i}") for i in range(10)] + [rec(f"still-pan:{i}") for i in range(3)]
    splits = assign_splits(records, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    video = [splits[f"v{i}"] for i in range(10)]
    assert video.count("test") == 2 and video.count("val") == 2
    assert sorted(splits[f"still-pan:{i}"] for i in range(3)) == ["test", "train", "val"]


def test_shipped_recipe_loads_and_bad_recipes_fail(tmp_path):
    recipe = load_recipe("samples-16x64")
    assert recipe.clip.frames == 16 and len(recipe.variants) == 5
    with pytest.raises(UsageError):
        recipe_from_dict({"real": [{"kind": "nope"}]})
    with pytest.raises(UsageError):
        recipe_from_dict({"real": [{"kind": "stills"}], "splits": {"train": 0.5, "val": 0.1, "test": 0.1}})
    with pytest.raises(UsageError):
        recipe_from_dict({"real": [{"kind": "stills"}], "clip": {"width": 33}})
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [")
    with pytest.raises(UsageError):
        load_recipe(bad)


@pytest.mark.slow
def test_cli_build_and_info(footage, tmp_path):
    from conftest import run_cli, run_process
    out = run_process("clipproof", "datasets", "build", "--real", str(footage), "--frames", "4", "--size", "32x32",
                  "--windows", "1", "--seed", "5", "--out", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert "clips in" in out.stdout
    info = run_cli("clipproof", "datasets", "info", str(tmp_path / "c"), "--json")
    rows = json.loads(info.stdout)
    assert sum(r["clips"] for r in rows) == len(read_manifest(tmp_path / "c"))
    assert run_cli("clipproof", "datasets", "build", "--out", str(tmp_path / "x")).returncode == 64
    assert run_cli("clipproof", "datasets", "info", str(tmp_path / "nothing")).returncode == 66
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    out = run_cli("clipproof", "datasets", "build", "--real", str(footage), "--out", str(a_file))
    assert out.returncode == 73 and "exists and is not a folder" in out.stderr and a_file.read_text() == "keep me"


def test_fetch_samples_goes_on_when_a_set_cannot_be_fetched(tmp_path, monkeypatch):
    from clipproof.datasets import sources as src

    def broken(work: Path):
        raise RuntimeError("apt-get download failed: no such package")

    def one_video(work: Path):
        return [write_mp4(moving_scene(8, 32, 32), work / "Clip_Pristine.mp4")]

    monkeypatch.setattr(src, "SAMPLE_SETS", [src.SampleSet("gone", broken, "n/a"),
                                             src.SampleSet("here", one_video, "test licence")])
    messages = []
    fetched = src.fetch_samples(tmp_path / "cache", log=messages.append)
    assert any("gone: not fetched (apt-get download failed" in m for m in messages)
    assert [s.name for s in fetched] == ["here:clip_pristine"] and fetched[0].group == "here:clip"
    again = src.sample_sources(tmp_path / "cache")
    assert again[0].sha256 == fetched[0].sha256 and Path(again[0].path).is_file()
    assert again[0].licence == "test licence"


def test_publication_formats_as_variants_for_both_labels():
    # A GIF's palette and a player's upscale, applied to any clip: both labels get them, so the
    # format says nothing about the label (the wild-dev lesson).
    from clipproof.datasets.variants import variants_from
    gif, up = variants_from(gif_palette=[64], upscale=[2])
    frames = moving_scene(3, 48, 32)
    quantized = gif.apply(frames)
    assert quantized.shape == frames.shape and quantized.dtype == np.uint8
    assert all(len(np.unique(f.reshape(-1, 3), axis=0)) <= 64 for f in quantized)
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 64          # it did reduce the colours
    assert up.apply(frames).shape == (3, 64, 96, 3) and (gif.name, up.name) == ("gif64", "up2")
    # Ordered dithering leaves the period-2 checkerboard some published samples carry; error
    # diffusion does not.
    (ordered,) = variants_from(gif_ordered=[16])
    smooth = np.repeat(np.repeat(np.linspace(40, 200, 64, dtype=np.float32)[None, None, :, None], 64, 1), 3, 3)
    smooth = smooth.astype(np.uint8).repeat(2, 0)

    def checker(arr):
        y = arr[0].astype(float).mean(axis=2)
        return abs(np.fft.fft2(y - y.mean())[32, 32]) / y.size
    dithered = ordered.apply(smooth)
    assert ordered.name == "gif16-ordered" and len(np.unique(dithered[0].reshape(-1, 3), axis=0)) <= 16
    assert checker(dithered) > 1.0 > 0.2 > checker(variants_from(gif_palette=[16])[0].apply(smooth))
    for bad in ({"gif_palette": [300]}, {"gif_ordered": [1]}, {"upscale": [0.5]}, {"downscale": [2.0]}):
        with pytest.raises(UsageError):
            variants_from(**bad)


@pytest.mark.slow      # builds a corpus of a labelled folder, with its GIF variants
def test_a_labelled_folder_is_a_corpus_source_split_by_generator(tmp_path):
    # Generator outputs and footage from elsewhere (a folder as `detector eval --folder` reads
    # it) train like any source: native crops, several per window of a short clip, the labels
    # and generators kept, each generator's clips dealt out over the splits.
    folder = tmp_path / "wild"
    for kind, names in (("synthetic", [f"genx__{i}" for i in range(4)] + [f"geny__{i}" for i in range(4)]),
                        ("real", ["cam__a", "cam__b", "cam__c"]), ("rendered", ["toon"])):
        (folder / kind).mkdir(parents=True)
        for name in names:
            write_mp4(moving_scene(16, 96, 80, seed=sum(map(ord, name))), folder / kind / f"{name}.mp4", fps=8)
    recipe = recipe_from_dict({"seed": 1, "clip": {"frames": 8, "width": 32, "height": 32, "windows": 2,
                                                   "native": True, "crops": 3},
                               "labelled": [{"path": str(folder)}], "variants": {"gif_ordered": [64]}})
    records = build_corpus(recipe, tmp_path / "c", show_progress=False, log=lambda m: None).records
    originals = [r for r in records if r.variant == "original"]
    assert len(originals) == 12 * 2 * 3 and {r.width for r in records} == {32}
    assert {r.generator for r in originals if r.label == "synthetic"} == {"genx", "geny"}
    assert {r.label for r in originals if "rendered" in r.source or "cam" in r.source} == {"real"}
    for gen in ("genx", "geny"):
        assert {r.split for r in originals if r.generator == gen} == {"train", "val", "test"}
    # Crops of one window share its frames' times but not their place.
    first = [r for r in originals if r.source.endswith("/genx__0")]
    assert len({r.sha256 for r in first}) == 6 and len({r.start_s for r in first}) == 2
    assert {r.variant for r in records} == {"original", "gif64-ordered"}
    # The videos behind the test split, as a folder `detector eval --folder` scores whole.
    from clipproof.datasets.held_out import write_held_out
    from conftest import run_cli
    from clipproof.datasets.labelled import labelled_clips
    listed = write_held_out(tmp_path / "c", tmp_path / "held-out")
    in_test = {r.source for r in records if r.split == "test"}
    assert {v.corpus_source for v in listed} == in_test
    clips = labelled_clips(tmp_path / "held-out", both_labels=False)
    assert sorted(str(c.path) for c in clips) == sorted(v.file for v in listed)
    for c in clips:         # each keeps the label of the folder it came from, and its generator
        assert c.kind == c.path.parent.name
    assert {(c.group, c.path.stem.split("__")[0]) for c in clips if c.kind == "synthetic"} == {("genx", "genx"),
                                                                                               ("geny", "geny")}
    assert run_cli("clipproof", "datasets", "held-out", str(tmp_path), "--out", str(tmp_path / "x")).returncode == 66
    with pytest.raises(UsageError, match="native"):
        recipe_from_dict({"labelled": [{"path": str(folder)}], "clip": {"crops": 2}})
    with pytest.raises(UsageError, match="one key"):
        recipe_from_dict({"labelled": [{"path": str(folder), "label": "x"}]})


@pytest.mark.slow      # four clips rendered and encoded, up to 720p
def test_rendered_sources_are_a_labelled_folder_of_rendered_footage(tmp_path):
    # The detector's corpus gets computer-drawn pictures as "not generated": the folder the tool
    # writes is read as rendered footage, one source each, and the tests' own patterns stay out.
    from clipproof.datasets.labelled import labelled_clips
    from clipproof.media import probe
    from tools.render_sources import MOTION_GRAPHICS, SIZES, SOURCES, main
    drawn = " ".join(graph for _, graph, _ in MOTION_GRAPHICS)
    assert not {"smptebars", "testsrc2", "life", "mandelbrot"} & ({name for name, _ in SOURCES} | set(drawn.split("=")))
    assert main(["--out", str(tmp_path), "--per-source", "1", "--only", "zoneplate", "--only", "gradients",
                 "--only", "moving shapes", "--seed", "3"]) == 0
    clips = labelled_clips(tmp_path, log=lambda _: None, both_labels=False)
    assert len(clips) == 5 and {c.kind for c in clips} == {"rendered"} and {c.label for c in clips} == {0}
    assert {c.group for c in clips} == {"test source: zoneplate", "test source: gradients", "motion graphic: moving shapes"}
    for c in clips:
        info = probe(c.path)
        assert (info.width, info.height) in SIZES and info.frames == 16
    # The shapes move, and noise laid over a source drawn in RGBA stays noise (FFmpeg's noise
    # filter garbles packed RGBA: frame-to-frame differences of ~100 grey levels).
    from tools.render_sources import _fields, render_graph
    graph = {name: graph for name, graph, _ in MOTION_GRAPHICS}["moving shapes"]
    shapes = np.stack(render_graph(graph.format(**_fields(np.random.default_rng(0), (160, 120))), 0)).astype(int)
    assert np.abs(np.diff(shapes, axis=0)).max() > 100
    noisy = np.stack(render_graph("gradients=s=160x120:r=24:seed=5:speed=0.01", 4)).astype(int)
    assert 1 < np.abs(np.diff(noisy, axis=0)).mean() < 10
