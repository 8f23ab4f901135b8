"""End to end without a model: the ground-truth heatmaps of the val pipeline, decoded and scored, give AP 1.

This ties the whole geometric chain together on real COCO data: box → centre/scale → UDP warp → target
encoding → DARK-UDP decoding → inverse warp → COCO results → OKS metrics. Any offset, flip or scale
error anywhere in the chain shows up as AP < 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.codecs import UDPHeatmapCodec
from aidpose.data.keypoints import COCO
from aidpose.data.topdown import TopDownDataset
from aidpose.evaluation import evaluate_results
from aidpose.evaluation.results import topdown_results


@pytest.mark.parametrize(
    ("input_size", "heatmap_size", "sigma", "blur_kernel", "decode"),
    [
        ((192, 256), (48, 64), 2.0, 11, "full"),
        ((96, 128), (24, 32), 1.5, 7, "full"),
        ((96, 128), (24, 32), 1.5, 7, "scaled"),  # the large people's crops read the 1/2 decode
    ],
)
def test_ground_truth_heatmaps_score_ap_one(coco_mini, input_size, heatmap_size, sigma, blur_kernel, decode):
    dataset = TopDownDataset(
        coco_mini / "test_coco.json",
        coco_mini,
        train=False,
        codec=UDPHeatmapCodec(input_size, heatmap_size, sigma, blur_kernel),
        decode=decode,
    )
    batch = dataset.collate([dataset[i] for i in range(len(dataset))])
    assert (dataset.image_reader.decoded[2] > 0) == (decode == "scaled")
    keypoints = dataset.codec.decode(batch["heatmaps"], batch["inv_affine"].numpy()).keypoints
    predictions = {
        "index": batch["index"].numpy(),
        "image_id": batch["image_id"].numpy(),
        "keypoints": keypoints,
        "bbox_score": batch["bbox_score"].numpy(),
        "area": batch["area"].numpy(),
    }
    results = topdown_results(predictions, sigmas=COCO.sigmas, nms="oks", nms_thr=0.9, kpt_score_thr=0.2)
    metrics = evaluate_results(dataset.ann_file, results)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AR"] == pytest.approx(1.0)
    # decoded visible joints land on their labels to well under a pixel
    labelled = dataset.records.keypoints[..., 2] > 0
    error = np.linalg.norm(keypoints[..., :2] - dataset.records.keypoints[..., :2], axis=-1)[labelled]
    assert np.median(error) < 0.25
