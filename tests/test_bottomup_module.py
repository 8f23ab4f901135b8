"""Bottom-up module: whole-image inference geometry (flip test, multi-resolution, multi-scale) on a stub network
with a known answer, validation rows, the NaN-loss guard, config wiring (heads, schedules, CPU default, CrowdPose
for both paradigms)."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.data.bottomup import BottomUpValDataset
from aidpose.geometry.inference import scale_inputs
from aidpose.models.bottomup_losses import BottomUpLoss
from aidpose.training.bottomup_module import BottomUpPoseModule
from tests.helpers import compose_config, write_crowdpose

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


class BlobNet(nn.Module):
    """Reads the image's red channel back from the normalised input and returns it, average-pooled to each
    output stride, as the heatmap of every joint (tags 0): every joint peaks where the image's blob is."""

    def __init__(self, strides: list[int], with_tags: list[bool], num_keypoints: int = 17) -> None:
        super().__init__()
        self.strides, self.with_tags, self.k = strides, with_tags, num_keypoints

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        red = (x[:, :1] * STD[0] + MEAN[0]) / 255.0
        outputs = []
        for stride, tags in zip(self.strides, self.with_tags, strict=True):
            heat = nn.functional.avg_pool2d(red, stride).repeat(1, self.k, 1, 1)
            outputs.append(torch.cat([heat, torch.zeros_like(heat)], 1) if tags else heat)
        return outputs


def blob_image(
    center: tuple[float, float], size: tuple[int, int] = (200, 150), sigma: float = 7.0
) -> np.ndarray:
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w]
    red = 255 * np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * sigma**2))
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 2] = np.round(red).astype(np.uint8)  # BGR: red is the last channel
    return image


def stub_module(strides: list[int], scales: list[float], flip: bool) -> BottomUpPoseModule:
    with_tags = [i == 0 for i in range(len(strides))]
    codec = AssociativeEmbeddingCodec(
        input_size=(128, 128),
        output_strides=strides,
        with_tags=with_tags,
        scales=scales,
        flip_test=flip,
        detection_threshold=0.05,
    )
    loss = partial(BottomUpLoss, with_heatmaps=codec.with_heatmaps, with_tags=codec.with_tags)
    module = BottomUpPoseModule(
        net=BlobNet(strides, with_tags),
        loss=loss,
        schedule=None,
        optimizer=None,
        layout="coco",
        codec=codec,
        mean=MEAN,
        std=STD,
        test={"dataset": "coco"},
    )
    return module.eval()


@pytest.mark.parametrize(
    ("strides", "scales", "flip"),
    [([4], [1.0], False), ([4], [1.0], True), ([4, 2], [1.0], True), ([4, 2], [0.5, 1.0, 2.0], True)],
)
def test_inference_finds_the_blob_in_image_pixels(strides, scales, flip) -> None:
    """One person, every joint at the blob: flip-back, resolution and scale merging and the heatmap → image
    matrix must all put it back at the blob's image position (a non-square image, padded input)."""
    center = (83.4, 61.7)
    module = stub_module(strides, scales, flip)
    images, matrices = scale_inputs(blob_image(center), 128, scales)
    sizes = {s: tuple(i.shape[1:]) for s, i in zip(scales, images, strict=True)}
    assert sizes[1.0] == (128, 192)  # short side 150 → 128, long side 200 → 171 → padded to 192
    assert sizes.get(0.5, (64, 96)) == (64, 96) and sizes.get(2.0, (256, 384)) == (256, 384)
    found = module.find_people(images, matrices)
    [whole] = module.predict_people([blob_image(center)])  # the same from the BGR image
    np.testing.assert_array_equal(whole.keypoints, found.keypoints)
    assert found.keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(found.keypoints[0, :, :2], np.tile(center, (17, 1)), atol=0.6)


def test_mirrored_image_gives_the_mirrored_person() -> None:
    """Flip test on an image and on its mirror: the person found in the mirror is at x → W - 1 - x."""
    module = stub_module([4, 2], [1.0], True)
    image = blob_image((52.6, 90.2))
    [a, b] = module.predict_people([image, image[:, ::-1].copy()])
    np.testing.assert_allclose(b.keypoints[0, :, 0], 200 - 1 - a.keypoints[0, :, 0], atol=1e-3)
    np.testing.assert_allclose(b.keypoints[0, :, 1:], a.keypoints[0, :, 1:], atol=1e-3)


def test_validation_rows_are_unique_per_person_and_image(tmp_path: Path) -> None:
    module = stub_module([4], [1.0], True)
    image = blob_image((50.0, 40.0))
    batch = []
    for index, image_id in ((0, 7), (1, 9)):
        images, matrices = scale_inputs(image, 128, module.codec.scales)
        batch.append({"index": index, "image_id": image_id, "images": images, "matrices": matrices})
    module.validation_step(batch, 0)
    [rows] = module._val_outputs  # one person per image, the batch's rows in one dict (predict_step)
    assert rows["image_id"].tolist() == [7, 9]
    assert rows["index"].tolist() == [0, module.codec.max_people]
    assert rows["keypoints"].shape == (2, 17, 3)


def test_nan_loss_stops_naming_step_epoch_and_batch() -> None:
    """The NaN/inf guard of both paradigms (``PoseModule.training_step``) on a bottom-up batch."""
    module = stub_module([4], [1.0], False)
    batch = {
        "image": torch.zeros(2, 3, 128, 128, dtype=torch.uint8),
        "heatmaps": [torch.full((2, 17, 32, 32), float("nan"))],
        "masks": [torch.ones(2, 32, 32)],
        "keypoint_indices": torch.zeros(2, 30, 17, 2, dtype=torch.long),
    }
    with pytest.raises(FloatingPointError, match=r"nan at global step 0 \(epoch 0, batch 3\)"):
        module.training_step(batch, 3)


def test_whole_image_val_dataset(tmp_path: Path) -> None:
    import json

    cv2.imwrite(str(tmp_path / "a.png"), blob_image((30.0, 30.0)))
    cv2.imwrite(str(tmp_path / "b.png"), blob_image((30.0, 30.0), size=(100, 160)))
    kps = [0.0] * 51
    kps[0:3] = [30.0, 30.0, 2]
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 200, "height": 150},
            {"id": 2, "file_name": "b.png", "width": 100, "height": 160},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "keypoints": kps,
                "num_keypoints": 1,
                "bbox": [20, 20, 20, 20],
                "area": 400,
            },
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(data))
    codec = AssociativeEmbeddingCodec(input_size=(64, 64), output_strides=[4], scales=[0.5, 1.0])
    dataset = BottomUpValDataset(tmp_path / "ann.json", tmp_path, codec=codec)
    assert len(dataset) == 2 and dataset.summary == {"images": 2, "instances": 1}  # image 2 has no people
    item = dataset[1]
    assert item["image_id"] == 2 and [tuple(i.shape) for i in item["images"]] == [(3, 64, 32), (3, 128, 64)]
    assert item["matrices"].shape == (2, 2, 3) and BottomUpValDataset.collate([item, item]) == [item, item]
    with pytest.raises(ValueError, match="use BottomUpDataset to train"):
        BottomUpValDataset(tmp_path / "ann.json", tmp_path, codec=codec, train=True)


def test_paradigm_configs_compose(tmp_path: Path) -> None:
    cfg = compose_config(["paradigm=bottomup"], tmp_path)
    assert cfg.paradigm.name == "bottomup" and cfg.dataset.source.preset == "crowd"
    assert cfg.paradigm.codec.output_strides == [4, 2] and cfg.paradigm.loss.push_weight == 0.02
    assert (cfg.schedule.name, cfg.schedule.epochs, list(cfg.schedule.milestones)) == (
        "bottomup_s1",
        300,
        [200, 260],
    )
    simple = compose_config(["paradigm=bottomup", "paradigm/head=simple"], tmp_path)
    assert simple.paradigm.codec.output_strides == [4] and simple.paradigm.head._target_.endswith(
        "SimpleBottomUpHead"
    )
    paper = compose_config(["experiment=coco_higherhrnet_w48_640", "schedule=bottomup_s2"], tmp_path)
    assert (paper.paradigm.input_size, paper.backbone.name) == ([640, 640], "hrnet_w48")
    assert (paper.paradigm.loss.push_weight, paper.paradigm.loss.pull_weight) == (
        0.001,
        0.001,
    )  # HigherHRNet's
    assert (paper.schedule.epochs, list(paper.schedule.milestones), paper.schedule.lr) == (
        600,
        [560, 590],
        1e-3,
    )  # HigherHRNet's and UDP-Pose's Adam rate
    topdown = compose_config([], tmp_path)  # the top-down default is unchanged
    assert topdown.paradigm.name == "topdown" and topdown.paradigm.input_size == [96, 128]
    assert topdown.dataset.source.preset == "default" and topdown.schedule.name == "s1"


def test_build_bottomup_module_from_config_and_size_check(tmp_path: Path) -> None:
    from aidpose.builders import build_codec, build_module

    cfg = compose_config(["paradigm=bottomup", "debug=fast", "test.scales=[0.5,1,2]"], tmp_path)
    codec = build_codec(cfg)
    assert codec.scales == [0.5, 1.0, 2.0] and codec.heatmap_sizes == [(16, 24), (32, 48)]
    assert (
        dataclasses.replace(codec, top_k=20).heatmap_sizes == codec.heatmap_sizes
    )  # sizes agree with strides
    with pytest.raises(ValueError, match="disagree with output_strides"):
        dataclasses.replace(codec, heatmap_sizes=[(8, 12), (32, 48)])
    module = build_module(cfg, codec)
    assert isinstance(module, BottomUpPoseModule)
    cfg.paradigm.codec.output_strides, cfg.paradigm.codec.with_heatmaps, cfg.paradigm.codec.with_tags = (
        [4],
        [True],
        [True],
    )
    with pytest.raises(ValueError, match=r"paradigm/head=higherhrnet\|simple"):
        build_module(cfg, build_codec(cfg))


def test_crowdpose_for_both_paradigms(tmp_path: Path) -> None:
    """dataset=crowdpose: a top-down run builds and loads CrowdPose, a bottom-up paper experiment too (14 joints)."""
    from aidpose.builders import build_codec, build_datamodule, build_module

    topdown = compose_config(["dataset=crowdpose"], tmp_path)
    write_crowdpose(Path(topdown.paths.data_dir) / "crowdpose")
    codec = build_codec(topdown)
    data = build_datamodule(topdown, codec)
    data.setup("fit")
    item = data.train_dataset[0]
    assert item["heatmaps"].shape == (14, 32, 24) and data.val_dataset.summary["instances"] == 1
    assert build_module(topdown, codec).net.head.final.out_channels == 14

    bottomup = compose_config(
        ["experiment=crowdpose_higherhrnet_w32_512", "backbone=hrnet_w18_small", "paradigm.input_size=[64,64]",
         "trainer=cpu"],
        tmp_path,
    )  # fmt: skip
    codec = build_codec(bottomup)
    data = build_datamodule(bottomup, codec)
    data.setup("fit")
    assert data.train_dataset[0]["heatmaps"][1].shape == (14, 32, 32)
    assert len(data.val_dataset[0]["images"]) == 1
    outputs = build_module(bottomup, codec).net(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outputs] == [(28, 16, 16), (14, 32, 32)]
