"""Training mixes (``dataset=coco_aic``): the sampling of sets by ratio (``aidpose.data.mixed``, mmpose's
``CombinedDataset(sample_ratio_factor=...)``), the cached AIC → COCO conversion, ``dataset=aic`` and a debug run."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from aidpose.builders import build_codec, build_datamodule
from aidpose.data.aic import AIC_TO_COCO, aic_dataset_to_coco
from aidpose.data.keypoints import AIC, COCO
from aidpose.data.mixed import MixedDataset, locate, mixed_lengths
from aidpose.data.pipeline import SampleKey
from aidpose.data.sources import ExtraTrainSource
from aidpose.evaluation.api import evaluate_results
from tests.conftest import AIC_MINI
from tests.helpers import compose_config, run_cli


class Items:
    """A stand-in training set: its items say which set, item and key they were read with."""

    num_unreadable_skipped = 0

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size, self.summary = name, size, {"instances": size}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: SampleKey) -> tuple[str, int, int, int]:
        return self.name, key.index, key.seed, key.epoch

    sample = __getitem__


def test_mixed_lengths_and_locate_by_hand() -> None:
    assert mixed_lengths([4, 6], [1.0, 0.5]) == [4, 3]
    assert mixed_lengths([3, 5], [2.0, 0.0]) == [6, 0]
    # set 0's block is positions 0-3, set 1's 4-6; position j of a block reads floor((j + u) · size / length)
    assert locate(2, [4, 6], [4, 3], 0.9) == (0, 2)  # ratio 1: each position its own item
    assert locate(5, [4, 6], [4, 3], 0.0) == (1, 2)  # j = 1 of 3 strata of 6 items: items 2 or 3
    assert locate(5, [4, 6], [4, 3], 0.99) == (1, 3)
    assert locate(6, [4, 6], [4, 3], 0.5) == (1, 5)
    # ratio 2: 6 positions over 3 items, each item twice
    assert [locate(j, [3], [6], 0.5)[1] for j in range(6)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(IndexError, match="position 7"):
        locate(7, [4, 6], [4, 3], 0.0)
    with pytest.raises(ValueError, match="non-negative ratio"):
        mixed_lengths([4, 6], [1.0, -1.0])
    with pytest.raises(ValueError, match="samples nothing"):
        mixed_lengths([4, 6], [0.0, 0.0])


def test_an_epoch_of_a_mix_samples_each_set_by_its_ratio() -> None:
    mix = MixedDataset(
        [Items("coco", 4), Items("aic", 6), Items("extra", 3)], [1.0, 0.5, 2.0], ["coco", "aic", "x"]
    )
    assert len(mix) == 4 + 3 + 6
    assert mix.summary == {
        "coco/instances": 4, "coco/sampled_per_epoch": 4, "aic/instances": 6, "aic/sampled_per_epoch": 3,
        "x/instances": 3, "x/sampled_per_epoch": 6,
    }  # fmt: skip
    items = [mix[SampleKey(i, seed=3, epoch=1)] for i in range(len(mix))]
    assert [index for name, index, _, _ in items if name == "coco"] == [0, 1, 2, 3]
    aic = [index for name, index, _, _ in items if name == "aic"]
    assert [index // 2 for index in aic] == [0, 1, 2]  # one item of each stratum {0, 1}, {2, 3}, {4, 5}
    assert Counter(index for name, index, _, _ in items if name == "extra") == {0: 2, 1: 2, 2: 2}
    # a repeated item is read with two keys (two augmentations); the epoch is kept; the draw is reproducible
    repeats = [(index, seed) for name, index, seed, _ in items if name == "extra"]
    assert len(set(repeats)) == 6 and {epoch for *_, epoch in items} == {1}
    assert items == [mix[SampleKey(i, seed=3, epoch=1)] for i in range(len(mix))]
    other_epoch = [mix[SampleKey(i, seed=3, epoch=2)] for i in range(4, 7)]
    assert [index // 2 for _, index, _, _ in other_epoch] == [0, 1, 2]
    assert mix.sample(SampleKey(0, 3, 1)) == items[0]


def test_the_fixture_maps_every_aic_joint_onto_its_coco_joint() -> None:
    aic = json.loads((AIC_MINI / "aic_train.json").read_text())
    coco = aic_dataset_to_coco(aic)
    person = np.asarray(aic["annotations"][0]["keypoints"]).reshape(14, 3)  # all 14 joints labelled
    mapped = np.asarray(coco["annotations"][0]["keypoints"]).reshape(17, 3)
    to_coco = dict(AIC_TO_COCO)
    for joint, name in enumerate(AIC.keypoint_names):
        if name in ("head_top", "neck"):
            assert joint not in to_coco and not any((mapped[:, :2] == person[joint, :2]).all(axis=1))
        else:
            assert COCO.keypoint_names[to_coco[joint]] == name
            assert mapped[to_coco[joint]].tolist() == person[joint].tolist()
    assert mapped[:5].tolist() == [[0, 0, 0]] * 5  # the face joints: unlabelled
    # after the mapping, mirroring swaps the same joints on both sides
    flipped_then_mapped = aic_dataset_to_coco(
        {
            **aic,
            "annotations": [{**aic["annotations"][0], "keypoints": person[AIC.flip_index].ravel().tolist()}],
        }
    )
    np.testing.assert_array_equal(
        np.asarray(flipped_then_mapped["annotations"][0]["keypoints"]).reshape(17, 3), mapped[COCO.flip_index]
    )
    # the person with only head top and neck keeps no joint
    assert coco["annotations"][3]["num_keypoints"] == 0


def test_the_converted_file_is_made_once_and_read_by_the_mix(tmp_path, coco_mini) -> None:
    source = ExtraTrainSource(
        root=str(AIC_MINI), train_ann="aic_train.json", train_images="../coco_mini", ratio=0.5,
        convert=aic_dataset_to_coco, cache_dir=str(tmp_path / "converted"),
    )  # fmt: skip
    part = source.prepare("aic")
    assert part.name == "aic" and part.ratio == 0.5 and part.images == AIC_MINI / "../coco_mini"
    assert json.loads(part.ann.read_text()) == aic_dataset_to_coco(
        json.loads((AIC_MINI / "aic_train.json").read_text())
    )
    stamp = part.ann.stat().st_mtime_ns
    assert source.prepare("aic").ann == part.ann and part.ann.stat().st_mtime_ns == stamp  # reused
    missing = ExtraTrainSource(
        str(tmp_path), "aic_train.json", "images", 1.0, aic_dataset_to_coco, str(tmp_path)
    )
    with pytest.raises(FileNotFoundError, match=r"dataset\.source\.extra\.aic\.root=DIR"):
        missing.prepare("aic")
    # dataset=coco_aic on the fixtures: COCO's 12 people and AIC's 3 (the 4th has no COCO joint), AIC at 0.5
    cfg = compose_config(
        ["dataset=coco_aic", f"dataset.source.root={coco_mini}", "dataset.source.train_ann=test_coco.json",
         "dataset.source.val_ann=test_coco.json", "dataset.source.train_images=.", "dataset.source.val_images=.",
         f"dataset.source.extra.aic.root={AIC_MINI}", "dataset.source.extra.aic.train_ann=aic_train.json",
         "dataset.source.extra.aic.train_images=../coco_mini", "dataset.source.extra.aic.ratio=0.5",
         f"paths.data_dir={tmp_path}"],
        tmp_path,
    )  # fmt: skip
    datamodule = build_datamodule(cfg, build_codec(cfg))
    datamodule.setup("fit")
    mix = datamodule.train_dataset
    assert isinstance(mix, MixedDataset) and mix.names == ["train", "aic"]
    assert mix.summary["train/instances"] == 12 and mix.summary["aic/instances"] == 3
    assert mix.summary["aic/skipped_no_keypoints"] == 1 and mix.lengths == [12, 2]
    assert datamodule.val_dataset.ann_file == str(coco_mini / "test_coco.json")  # validation: COCO only
    item = mix[SampleKey(13, seed=0, epoch=0)]  # an AIC person, as a COCO-17 target
    assert item["keypoint_weights"].shape[0] == 17 and not item["keypoint_weights"][:5].any()


def test_dataset_aic_reads_14_joints_and_scores_with_aic_sigmas(tmp_path) -> None:
    cfg = compose_config(
        ["dataset=aic", f"dataset.source.root={AIC_MINI}", "dataset.source.train_ann=aic_train.json",
         "dataset.source.val_ann=aic_train.json", "dataset.source.train_images=../coco_mini",
         "dataset.source.val_images=../coco_mini"],
        tmp_path,
    )  # fmt: skip
    datamodule = build_datamodule(cfg, build_codec(cfg))
    datamodule.setup("fit")
    assert datamodule.train_dataset.layout is AIC and len(datamodule.train_dataset) == 4
    assert datamodule.train_dataset.flip_index.tolist() == AIC.flip_index.tolist()
    truth = json.loads((AIC_MINI / "aic_train.json").read_text())
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in truth["annotations"]
    ]
    assert evaluate_results(AIC_MINI / "aic_train.json", results, dataset="aic")["AP"] == pytest.approx(1.0)
    # one joint 10 px off: the OKS scale is 0.53 × the box area (the file has no 'area'), with AIC's sigma
    moved = json.loads(json.dumps(results))
    moved[0]["keypoints"][0] += 10.0
    box = truth["annotations"][0]["bbox"]
    oks = (13 + np.exp(-(10.0**2) / (2 * 0.53 * box[2] * box[3] * (2 * AIC.sigmas[0]) ** 2))) / 14
    assert oks < 0.96  # so AP drops at the thresholds above it (COCO's 0.50:0.05:0.95)
    assert evaluate_results(AIC_MINI / "aic_train.json", moved, dataset="aic")["AP"] < 1.0


@pytest.mark.slow
def test_debug_fast_training_on_the_coco_aic_mix(tmp_path, coco_mini) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli(
        "aidpose.train", "debug=fast", "dataset=coco_aic", f"dataset.source.root={coco_mini}",
        "dataset.source.train_ann=test_coco.json", "dataset.source.val_ann=test_coco.json",
        "dataset.source.train_images=.", "dataset.source.val_images=.", f"dataset.source.extra.aic.root={AIC_MINI}",
        "dataset.source.extra.aic.train_ann=aic_train.json", "dataset.source.extra.aic.train_images=../coco_mini",
        "dataset.source.extra.aic.ratio=2", f"paths.data_dir={tmp_path / 'data'}", "logger=none",
        "callbacks.last_checkpoint=null", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert (
        summary["train_data"]["train/sampled_per_epoch"] == 12
        and summary["train_data"]["aic/sampled_per_epoch"] == 6
    )
    assert summary["metrics"]["AP"] >= 0.0 and summary["choices"]["dataset"] == "coco_aic"
    assert len(list((tmp_path / "data" / "converted").glob("aic_train_*.json"))) == 1
