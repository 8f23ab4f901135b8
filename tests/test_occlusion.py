"""Test-time occlusion: seeded per-crop droppers, measured occluded area, AP-versus-area through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from aidpose.aid import Cutout
from aidpose.codecs import UDPHeatmapCodec
from aidpose.data.occlusion import OccludedDataset, crop_rng, level_config, occlude
from aidpose.data.topdown import TopDownDataset
from aidpose.evaluation.occlusion import occlusion_droppers
from tests.helpers import CONF_DIR, run_cli


class RectangleDropper:
    """Drops the fixed rectangle rows 2–4, cols 1–5 (fill 0) and flags keypoints on it."""

    def drop(self, image, keypoints, rng, *, visibility=None):
        image[2:5, 1:6] = 0
        x, y = np.floor(keypoints[:, 0] + 0.5), np.floor(keypoints[:, 1] + 0.5)
        return image, (x >= 1) & (x <= 5) & (y >= 2) & (y <= 4)


def test_measured_area_counts_dropped_pixels_that_were_already_black():
    image = np.full((8, 10, 3), 200, dtype=np.uint8)
    image[:, :3] = 0  # a black border, as warped crops have: the rectangle covers 3 of its columns
    keypoints = np.array([[3.0, 3.0], [9.0, 7.0]])
    occluded, dropped, mask = occlude(image, keypoints, np.array([2, 2]), RectangleDropper(), seed=0, index=0)
    expected = np.zeros((8, 10), dtype=bool)
    expected[2:5, 1:6] = True
    np.testing.assert_array_equal(mask, expected)
    assert mask.mean() == 15 / 80
    assert dropped.tolist() == [True, False]
    assert (occluded[2:5, 1:6] == 0).all() and (image[2:5, 3:6] == 200).all()  # the input is not modified


def test_measured_area_of_cutout_equals_its_region():
    image = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    cutout = Cutout(size_range=(0.3, 0.3), fill="random")
    _, _, mask = occlude(image, np.zeros((0, 2)), None, cutout, seed=3, index=7)
    region = cutout.sample_region(crop_rng(3, 7), 40, 30, np.zeros((0, 2)), None)
    np.testing.assert_array_equal(mask, cutout.region_mask(region, 40, 30).full())


def test_crop_generator_depends_on_seed_and_index_only():
    assert crop_rng(0, 5).random() == crop_rng(0, 5).random()
    assert crop_rng(0, 5).random() != crop_rng(0, 6).random()
    assert crop_rng(0, 5).random() != crop_rng(1, 5).random()


def test_level_config_sets_the_size_argument_and_p():
    cutout = {"_target_": "aidpose.aid.Cutout", "p": 0.5, "size_range": [0.2, 0.4]}
    assert level_config(cutout, 0.1) == {"_target_": "aidpose.aid.Cutout", "p": 1.0, "size_range": [0.1, 0.1]}
    assert level_config(cutout, None) == {**cutout, "p": 1.0}
    has = {"_target_": "aidpose.aid.HideAndSeek", "p": 1.0, "hide_prob": 0.5}
    assert level_config(has, 0.25)["hide_prob"] == 0.25
    with pytest.raises(ValueError, match=r"set test\.occlusion_param"):
        level_config({"_target_": "aidpose.aid.InformationDropper", "size": 1}, 0.1)  # declares no strength
    with pytest.raises(ValueError, match=r"test\.occlusion_param='radius'"):
        level_config(cutout, 0.1, "radius")


def droppers_of(test: dict):
    """occlusion_droppers under the project's config search path (it composes conf/dropper/NAME)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return occlusion_droppers(OmegaConf.create(test))


def test_occlusion_droppers_from_dropper_configs():
    param, droppers = droppers_of(
        {"occlusion": "cutout", "occlusion_levels": [0.1, 0.2], "occlusion_param": None}
    )
    assert param == "size_range"
    assert [level for level, _ in droppers] == [0.1, 0.2]
    assert [d.size_range for _, d in droppers] == [(0.1, 0.1), (0.2, 0.2)]
    param, droppers = droppers_of(
        {"occlusion": "random_erasing", "occlusion_levels": None, "occlusion_param": None}
    )
    assert param is None and droppers[0][1].p == 1.0 and droppers[0][1].area_range == (0.02, 0.4)
    assert droppers_of({"occlusion": None}) == (None, [])
    with pytest.raises(ValueError, match="drops nothing"):
        droppers_of({"occlusion": "none", "occlusion_levels": None, "occlusion_param": None})
    with pytest.raises(ValueError, match=r"not a dropper config.*cutout"):
        droppers_of({"occlusion": "dropout", "occlusion_levels": None, "occlusion_param": None})


@pytest.fixture(scope="module")
def coco_val(coco_mini) -> TopDownDataset:
    return TopDownDataset(
        coco_mini / "test_coco.json",
        coco_mini,
        train=False,
        codec=UDPHeatmapCodec((48, 64), (12, 16), 1.0),
    )


def test_occluded_dataset_is_seeded_per_crop_and_grows_with_the_level(coco_val):
    small = OccludedDataset(coco_val, Cutout(size_range=(0.1, 0.1)), seed=0)
    large = OccludedDataset(coco_val, Cutout(size_range=(0.3, 0.3)), seed=0)
    again = OccludedDataset(coco_val, Cutout(size_range=(0.1, 0.1)), seed=0)
    assert small.ann_file == coco_val.ann_file and len(small) == len(coco_val)
    for index in (3, 0, 5):
        clean, item = coco_val[index], small[index]
        assert item["image"].shape == clean["image"].shape and item["image"].dtype == np.uint8
        np.testing.assert_array_equal(item["image"], again[index]["image"])  # same crop, any access order
        changed = (item["image"] != clean["image"]).any(axis=-1).mean()
        assert 0 < changed <= item["occluded_frac"] + 1e-6  # float32
        # the same hole centres (rng of (seed, index)), larger semi-axes: a superset of pixels
        assert large[index]["occluded_frac"] > item["occluded_frac"]
        np.testing.assert_array_equal(item["heatmaps"], clean["heatmaps"])  # labels unchanged


@pytest.mark.slow
def test_occlusion_curve_through_the_cli(tiny_checkpoint, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "aidpose.evaluate", f"ckpt_path={tiny_checkpoint}", "test.occlusion=cutout", "test.occlusion_levels=[0.1,0.3]",
        f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "occlusion.json").read_text())
    assert report["dropper"] == "cutout" and report["param"] == "size_range"
    rows = report["rows"]
    assert [row["level"] for row in rows] == ["clean", 0.1, 0.3]
    areas = [row["occluded_area"] for row in rows]
    assert 0 == areas[0] < areas[1] < areas[2] < 1
    assert rows[2]["dropped_kpt_frac"] >= rows[1]["dropped_kpt_frac"]
    assert all({"AP", "AR"} <= set(row["metrics"]) for row in rows)
    assert (run_dir / "occlusion.png").stat().st_size > 0
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["dataset"] == "synthpose"  # no dataset given: the checkpoint's own
    assert rows[1]["instances"] == summary["data"]["instances"]
    assert "area %" in proc.stdout
