"""The droppers' benchmark, picture and notebook run end to end on the real COCO fixture."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import cv2


def load_script(repo_root: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, repo_root / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in a script look their module up there
    spec.loader.exec_module(module)
    return module


def test_show_droppers_writes_the_grid(repo_root, coco_mini, tmp_path, capsys):
    show = load_script(repo_root, "show_droppers")
    out = tmp_path / "grid.png"
    show.main(
        [
            "--out",
            str(out),
            "--coco",
            str(coco_mini),
            "--synthpose-cache",
            str(tmp_path / "sp"),
            "--crops",
            "2",
            "--draws",
            "300",
        ]
    )
    grid = cv2.imread(str(out))
    columns = len(show.droppers())
    report = json.loads(capsys.readouterr().out)
    assert report["crops_per_size"] == 4 and report["columns"] == columns
    assert grid.shape[1] >= columns * 192 and grid.shape[0] >= 4 * (256 + 128)  # both sizes
    shares = report["dropped_area_share"]["relative"]
    assert set(shares) == {"Cutout", "HideAndSeek", "GridMask", "RandomErasing"}
    for by_size in shares.values():
        small, large = by_size["128x96"], by_size["256x192"]
        assert 0 < small["mean"] < 1 and abs(small["mean"] - large["mean"]) < 0.02


def test_bench_droppers_prints_its_json(repo_root, coco_mini, tmp_path, capsys):
    bench = load_script(repo_root, "bench_droppers")
    bench.main(
        [
            *("--number", "2", "--repeat", "1", "--pipeline-samples", "4", "--coco", str(coco_mini)),
            *("--synthpose-root", str(tmp_path / "sp")),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    for size in ("256x192", "512x512"):
        assert set(report["per_call"][size]) == {"Cutout", "RandomErasing", "HideAndSeek", "GridMask"}
        assert all(
            row["drop_us"] > 0 and row["counterpart_us"] > 0 for row in report["per_call"][size].values()
        )
    pipeline = report["topdown_pipeline"]
    for dataset in ("synthpose", "coco_photos"):
        shares = pipeline[dataset]["droppers"]
        assert set(shares) == {"Cutout", "RandomErasing", "HideAndSeek", "GridMask"}
        assert all(0 <= row["dropper_share"] < 1 for row in shares.values())


def test_bench_bottomup_pipeline_and_decoding_agree_with_the_reference(repo_root, coco_mini):
    bench = load_script(repo_root, "bench_bottomup")
    pipeline = bench.pipeline(coco_mini / "test_coco.json", coco_mini, samples=3)
    assert pipeline["images"] == 4 and pipeline["samples_per_cpu_s"] > 0
    decoding = bench.decoding(repeats=1)
    assert decoding["people_found"] == decoding["people"] == 30 and decoding["same_as_reference"]
    assert decoding["max_error_input_px"] < 0.5  # the 30 people are found where they were drawn
    assert bench.imread_ms(sorted(coco_mini.glob("*.jpg")), repeats=1) > 0
