"""SynthPose on disk: COCO format, determinism, crowd preset, CLI, preview and the generate-once cache."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from aidpose.data.keypoints import COCO
from aidpose.data.synthpose import (
    MANIFEST_NAME,
    crowd_index,
    dataset_folder_name,
    ensure_synthpose,
    generate_synthpose,
    render_sample,
)
from aidpose.data.synthpose import cache as cache_module
from aidpose.data.synthpose import generate as generate_module
from aidpose.data.synthpose.__main__ import main as cli_main
from aidpose.data.synthpose.generate import generator_params

SIZE = 128
PARAMS = {"num_train": 4, "num_val": 4, "seed": 7, "image_size": SIZE}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_synthpose(tmp_path_factory.mktemp("synthpose") / "a", **PARAMS)


def _load(dataset: Path, split: str) -> dict:
    return json.loads((dataset / "annotations" / f"person_keypoints_{split}.json").read_text())


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco_format_loads_with_pycocotools(dataset, split):
    from pycocotools.coco import COCO as CocoApi

    with contextlib.redirect_stdout(io.StringIO()):
        api = CocoApi(str(dataset / "annotations" / f"person_keypoints_{split}.json"))
    assert len(api.getImgIds()) == 4 and len(api.getAnnIds()) > 0
    category = api.loadCats(1)[0]
    assert category["name"] == "person" and category["keypoints"] == list(COCO.keypoint_names)
    assert [tuple(edge) for edge in category["skeleton"]] == list(COCO.skeleton)
    for image in api.loadImgs(api.getImgIds()):
        assert image["file_name"] == f"{image['id']:012d}.jpg"
        pixels = cv2.imread(str(dataset / "images" / split / image["file_name"]))
        assert pixels.shape == (image["height"], image["width"], 3) == (SIZE, SIZE, 3)
    ids = [a["id"] for a in api.dataset["annotations"]]
    assert len(set(ids)) == len(ids)


def test_keypoints_inside_images_and_boxes(dataset):
    for split in ("train", "val"):
        for ann in _load(dataset, split)["annotations"]:
            kps = np.asarray(ann["keypoints"], float).reshape(17, 3)
            labelled = kps[:, 2] > 0
            assert ann["num_keypoints"] == labelled.sum()
            assert set(np.unique(kps[:, 2])) <= {0, 1, 2}
            assert np.all(kps[~labelled, :2] == 0)
            assert np.all((kps[labelled, :2] >= 0) & (kps[labelled, :2] <= SIZE - 1))
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and ann["area"] > 0 and ann["iscrowd"] == 0 and ann["category_id"] == 1
            assert np.all((kps[labelled, 0] >= x) & (kps[labelled, 0] <= x + w))
            assert np.all((kps[labelled, 1] >= y) & (kps[labelled, 1] <= y + h))


def test_written_annotations_match_render_sample(dataset):
    data = _load(dataset, "val")
    for index, image in enumerate(data["images"]):
        rendered = render_sample(PARAMS["seed"], index, split="val", image_size=SIZE)
        written = [
            {k: v for k, v in a.items() if k not in ("id", "image_id")}
            for a in data["annotations"]
            if a["image_id"] == image["id"]
        ]
        assert written == rendered.annotations
        decoded = cv2.imread(str(dataset / "images" / "val" / image["file_name"])).astype(float)
        other = render_sample(PARAMS["seed"], index + 1, split="val", image_size=SIZE).image
        assert np.abs(decoded - rendered.image).mean() < min(8.0, np.abs(decoded - other).mean() / 3)


def test_same_arguments_give_identical_bytes(dataset, tmp_path):
    again = generate_synthpose(tmp_path / "b", **PARAMS)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len(files) == 4 + 4 + 2 + 1
    for rel in files:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_gives_other_data(dataset, tmp_path):
    other = generate_synthpose(tmp_path / "c", **{**PARAMS, "seed": 8, "num_train": 0})
    assert _load(other, "val")["annotations"] != _load(dataset, "val")["annotations"]


def test_crowd_preset_carries_crowd_index(tmp_path):
    out = generate_synthpose(
        tmp_path / "crowd", num_train=0, num_val=5, seed=1, image_size=SIZE, preset="crowd"
    )
    data = _load(out, "val")
    for image in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        assert len(anns) >= 3
        assert 0.0 <= image["crowdIndex"] <= 1.0
        expected = crowd_index(np.array([a["keypoints"] for a in anns]), np.array([a["bbox"] for a in anns]))
        assert image["crowdIndex"] == pytest.approx(expected, abs=1e-4)
    assert "crowdIndex" not in _load(generate_synthpose(tmp_path / "d", **PARAMS), "val")["images"][0]


@pytest.mark.parametrize(
    ("override", "option"),
    [
        ({"num_train": -1}, "num_train"),
        ({"num_val": 2.5}, "num_val"),
        ({"seed": -3}, "seed"),
        ({"image_size": 16}, "image_size"),
        ({"preset": "busy"}, "preset"),
    ],
)
def test_bad_arguments_name_the_option(tmp_path, override, option):
    with pytest.raises(ValueError, match=option):
        generate_synthpose(tmp_path / "x", **{**PARAMS, **override})
    with pytest.raises(ValueError, match=option):
        ensure_synthpose(tmp_path / "cache", **{**PARAMS, **override})


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="out_dir"):
        generate_synthpose(blocker / "out", **PARAMS)


def test_cli_rejects_bad_arguments(tmp_path):
    base = [sys.executable, "-m", "aidpose.data.synthpose", "--num-val", "1", "--seed", "0"]
    env_path = str(Path(__file__).resolve().parents[1] / "src")
    run = lambda *extra: subprocess.run(  # noqa: E731
        [*base, *extra], capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": ""}, timeout=60
    )
    result = run("--out", str(tmp_path / "o"), "--num-train", "-3")
    assert result.returncode == 2 and "--num-train" in result.stderr
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()) as err:
        cli_main(
            [
                "--out",
                str(tmp_path / "o"),
                "--num-train",
                "1",
                "--num-val",
                "1",
                "--seed",
                "0",
                "--preset",
                "x",
            ]
        )
    assert exc.value.code == 2 and "--preset" in err.getvalue()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        cli_main(["--out", str(blocker / "o"), "--num-train", "1", "--num-val", "1", "--seed", "0"])
    assert "--out" in err.getvalue()


def test_cli_generates_with_preview(tmp_path):
    out, preview = tmp_path / "cli", tmp_path / "preview.png"
    args = ["--out", str(out), "--num-train", "1", "--num-val", "2", "--seed", "3", "--image-size", "96"]
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        assert cli_main([*args, "--preview", str(preview)]) == 0
    report = json.loads(stdout.getvalue())
    assert report["val"]["images"] == 2 and report["train"]["images"] == 1
    grid = cv2.imread(str(preview))
    assert grid is not None and grid.shape[1] == 2 * (96 + 2)
    assert (out / MANIFEST_NAME).is_file()


# ---- ensure_synthpose -------------------------------------------------------------------------


def _counting_generator(monkeypatch) -> list[Path]:
    calls: list[Path] = []
    real = cache_module.generate_synthpose

    def counting(out_dir, **kwargs):
        calls.append(Path(out_dir))
        return real(out_dir, **kwargs)

    monkeypatch.setattr(cache_module, "generate_synthpose", counting)
    return calls


TINY = {"num_train": 1, "num_val": 1, "seed": 0, "image_size": 64}


def test_cache_reuses_same_parameters_and_separates_others(tmp_path, monkeypatch):
    calls = _counting_generator(monkeypatch)
    first = ensure_synthpose(tmp_path, **TINY)
    assert (first / "annotations" / "person_keypoints_val.json").is_file() and (
        first / "images" / "train"
    ).is_dir()
    assert ensure_synthpose(tmp_path, **TINY) == first and len(calls) == 1
    other = ensure_synthpose(tmp_path, **{**TINY, "seed": 1})
    crowd = ensure_synthpose(tmp_path, **TINY, preset="crowd")
    assert len({first, other, crowd}) == 3 and len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in (first, other, crowd)
    )


def test_cache_folder_name_covers_generator_version(monkeypatch):
    before = dataset_folder_name(generator_params(**TINY, preset="default"))
    monkeypatch.setattr(generate_module, "GENERATOR_VERSION", "999")
    assert dataset_folder_name(generator_params(**TINY, preset="default")) != before


def test_cache_never_reuses_half_written_folders(tmp_path, monkeypatch):
    name = dataset_folder_name(generator_params(**TINY, preset="default"))
    stale_tmp = tmp_path / f".{name}.tmp-1-dead"
    (stale_tmp / "annotations").mkdir(parents=True)
    (stale_tmp / MANIFEST_NAME).write_text(json.dumps({"params": generator_params(**TINY, preset="default")}))
    partial = tmp_path / name
    (partial / "images" / "train").mkdir(parents=True)  # a final-named folder without manifest
    calls = _counting_generator(monkeypatch)
    out = ensure_synthpose(tmp_path, **TINY)
    assert out == partial and len(calls) == 1 and calls[0] != stale_tmp
    assert (out / MANIFEST_NAME).is_file() and not stale_tmp.exists()


def test_interrupted_generation_leaves_nothing_reusable(tmp_path, monkeypatch):
    def crash(out_dir, **kwargs):
        (Path(out_dir) / "images").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "generate_synthpose", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthpose(tmp_path, **TINY)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    assert (ensure_synthpose(tmp_path, **TINY) / MANIFEST_NAME).is_file()


def test_concurrent_callers_generate_once(tmp_path, monkeypatch):
    calls = _counting_generator(monkeypatch)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_synthpose(tmp_path, **TINY))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1 and len(results) == 3
