"""Which half of a bottom-up model fails, its heatmaps or its tags? Prints JSON.

Each validation image of a bottom-up checkpoint (scale 1, the checkpoint's flip test) is decoded four ways and
scored with the project's metric on those images:

- ``model``: the model's people (``predict_people``: what validation measures, at scale 1);
- ``model_heatmaps_oracle_tags``: the model's heatmaps, tags from the ground truth (every pixel of joint
  channel k tagged with the person whose joint k is nearest): how good the heatmaps are;
- ``oracle_heatmaps_model_tags``: ground-truth heatmaps (the codec's encoding), the model's tags: how good the
  grouping is;
- ``oracle``: both from the ground truth: the ceiling of the codec at this input size.

Plus two measurements on the model's maps: left/right confusion (the 1/4 heatmap of joint k at the true
position of k against at its mirror partner's; a model that cannot tell left from right scores both alike) and
how far apart the tags put different people (grouping joins tags closer than the codec's tag threshold).

Usage: PYTHONPATH=src python scripts/diagnose_bottomup.py CKPT [--images 100]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ORACLE_TAG_STEP = 10.0
"""Tag distance between two people in the oracle tag maps: far above any tag threshold."""


def oracle_tag_maps(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Tag maps ``(K, h, w, 1)`` from the ground truth: pixel (x, y) of channel k holds ``ORACLE_TAG_STEP`` × the
    index of the person whose labelled joint k is nearest (0 where no person has joint k).

    ``keypoints`` (N, K, 2) in map pixels, ``visible`` (N, K) (> 0: labelled), ``size`` = (w, h).
    """
    w, h = size
    num_joints = visible.shape[1]
    ys, xs = np.mgrid[0:h, 0:w]
    tags = np.zeros((num_joints, h, w, 1), np.float32)
    for k in range(num_joints):
        people = np.flatnonzero(visible[:, k] > 0)
        if not len(people):
            continue
        centres = keypoints[people, k]
        d2 = (xs[None] - centres[:, 0, None, None]) ** 2 + (ys[None] - centres[:, 1, None, None]) ** 2
        tags[k, ..., 0] = ORACLE_TAG_STEP * people[d2.argmin(0)]
    return tags


def left_right_heat(
    heatmaps: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    flip_index: Sequence[int] | np.ndarray,
    min_separation: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """For every person and left/right joint k with both k and its partner labelled, on the map and at least
    ``min_separation`` pixels apart: heat of channel k at k's nearest pixel (``own``) and at the partner's
    (``partner``). ``heatmaps`` (K, h, w); ``keypoints`` (N, K, 2) in map pixels."""
    num_joints, h, w = heatmaps.shape
    xy = np.floor(keypoints + 0.5).astype(np.int64)
    own, partner = [], []
    for p in range(len(keypoints)):
        for k in range(num_joints):
            m = int(flip_index[k])
            if m == k or visible[p, k] <= 0 or visible[p, m] <= 0:
                continue
            (ax, ay), (bx, by) = xy[p, k], xy[p, m]
            if not (0 <= ax < w and 0 <= ay < h and 0 <= bx < w and 0 <= by < h):
                continue
            if max(abs(ax - bx), abs(ay - by)) < min_separation:
                continue
            own.append(heatmaps[k, ay, ax])
            partner.append(heatmaps[k, by, bx])
    return np.asarray(own, np.float64), np.asarray(partner, np.float64)


def person_tag_distances(tags: np.ndarray, keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Distances between the mean tags of every two people (the tags read at their labelled joints on the map).

    ``tags`` (K, h, w, L); ``keypoints`` (N, K, 2) in map pixels; ``visible`` (N, K)."""
    h, w = tags.shape[1:3]
    xy = np.floor(keypoints + 0.5).astype(np.int64)
    means = []
    for p in range(len(keypoints)):
        on_map = (
            (visible[p] > 0) & (xy[p, :, 0] >= 0) & (xy[p, :, 0] < w) & (xy[p, :, 1] >= 0) & (xy[p, :, 1] < h)
        )
        joints = np.flatnonzero(on_map)
        if len(joints):
            means.append(tags[joints, xy[p, joints, 1], xy[p, joints, 0]].mean(0))
    if len(means) < 2:
        return np.zeros(0)
    m = np.stack(means)
    i, j = np.triu_indices(len(m), 1)
    return np.linalg.norm(m[i] - m[j], axis=-1)


def annotations_of(coco: Any, image_ids: list[int]) -> dict[str, Any]:
    """The ground truth of ``image_ids`` only, as a COCO dict (the metric then scores just those images)."""
    return {
        "images": coco.loadImgs(image_ids),
        "annotations": coco.loadAnns(coco.getAnnIds(imgIds=image_ids, iscrowd=None)),
        "categories": coco.loadCats(coco.getCatIds()),
    }


def diagnose(ckpt_path: str, num_images: int) -> dict[str, Any]:
    import cv2
    from omegaconf import OmegaConf

    from aidpose.builders import build_datamodule, config_from_checkpoint, load_module_from_checkpoint
    from aidpose.codecs.associative_embedding import encode_bottomup_heatmaps
    from aidpose.codecs.udp_heatmap import heatmap_to_image_matrix
    from aidpose.data.coco import load_images
    from aidpose.evaluation import evaluate_results
    from aidpose.evaluation.results import coco_results
    from aidpose.geometry.affine import apply_affine, invert_affine
    from aidpose.training.checkpoints import read_checkpoint

    ckpt = read_checkpoint(ckpt_path)
    options = OmegaConf.create(
        {"test": {"scales": [1.0]}, "dataset": None, "num_workers": None, "batch_size": None}
    )
    run = config_from_checkpoint(ckpt, options, ckpt_path, given=("test.scales",))
    if run.paradigm.name != "bottomup":
        raise ValueError(
            f"{ckpt_path} is a {run.paradigm.name} checkpoint: diagnose_bottomup needs a bottom-up one"
        )
    module = load_module_from_checkpoint(run, ckpt, ckpt_path)
    codec, layout = module.codec, module.layout
    k = layout.num_keypoints
    datamodule = build_datamodule(run, codec)
    datamodule.setup("validate")
    images = datamodule.val_dataset
    coco = images.coco
    _, records, _ = load_images(images.ann_file, images.image_dir, k, run.dataset.layout)
    no_one = np.zeros((0, k, 3), np.float32)
    people_of = dict(zip(records.image_id.tolist(), records.keypoints, strict=True))  # labelled, not crowd
    variants = ("model", "model_heatmaps_oracle_tags", "oracle_heatmaps_model_tags", "oracle")
    found: dict[str, list[dict[str, np.ndarray]]] = {v: [] for v in variants}
    own, partner, distances, image_ids = [], [], [], []
    for i in range(min(num_images, len(images))):
        item = images[i]
        image_id = item["image_id"]
        image_ids.append(image_id)
        image = item["images"][0]
        with torch.no_grad():
            outputs, heat, tags = module.maps_at_scale(image)
        heat, tags = heat[0], tags[0]
        size = (heat.shape[-1], heat.shape[-2])
        matrix, input_size = np.asarray(item["matrices"][0]), (image.shape[-1], image.shape[-2])
        to_image = heatmap_to_image_matrix(matrix, input_size, size)
        people = people_of.get(image_id, no_one).astype(np.float64)
        xy, visible = apply_affine(people[..., :2], invert_affine(to_image)), people[..., 2]
        gt_heat = torch.from_numpy(encode_bottomup_heatmaps(xy, visible, size, codec.sigma))
        gt_tags = torch.from_numpy(oracle_tag_maps(xy, visible, size))
        [model_people] = module.predict_people([cv2.imread(images.files[item["index"]], cv2.IMREAD_COLOR)])
        maps = {
            "model_heatmaps_oracle_tags": (heat, gt_tags),
            "oracle_heatmaps_model_tags": (gt_heat, tags),
            "oracle": (gt_heat, gt_tags),
        }
        predictions = {"model": model_people, **{name: codec.decode(m, to_image) for name, m in maps.items()}}
        for name, prediction in predictions.items():
            found[name].append(
                {"image_id": np.full(len(prediction.scores), image_id), "keypoints": prediction.keypoints,
                 "score": prediction.scores}
            )  # fmt: skip
        quarter = outputs[0][0, :k].numpy()  # the lowest-resolution heatmaps, no flip
        to_quarter = invert_affine(heatmap_to_image_matrix(matrix, input_size, quarter.shape[:0:-1]))
        o, p = left_right_heat(quarter, apply_affine(people[..., :2], to_quarter), visible, layout.flip_index)
        own.append(o)
        partner.append(p)
        distances.append(person_tag_distances(tags.numpy(), xy, visible))
    truth = annotations_of(coco, image_ids)
    metric = run.dataset.get("metric", "coco")
    report: dict[str, Any] = {"checkpoint": ckpt_path, "images": len(image_ids)}
    for name, rows in found.items():
        predictions = {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
        metrics = evaluate_results(truth, coco_results(predictions), dataset=metric)
        report[name] = {key: round(metrics[key], 4) for key in ("AP", "AP50", "AR")} | {
            "people_found": len(predictions["score"])
        }
    o, p = np.concatenate(own), np.concatenate(partner)
    d = np.concatenate(distances)

    def share(values: np.ndarray) -> float | None:
        return round(float(values.mean()), 4) if len(values) else None

    report["left_right"] = {
        "pairs": len(o),
        "mean_heat_at_joint": share(o),
        "mean_heat_at_mirror_partner": share(p),
        "share_higher_at_joint": share(o > p),
    }
    report["tags"] = {
        "person_pairs": len(d),
        "median_distance": round(float(np.median(d)), 4) if len(d) else None,
        "share_above_tag_threshold": share(d > codec.tag_threshold),
        "tag_threshold": codec.tag_threshold,
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", help="a bottom-up last.ckpt / best.ckpt")
    parser.add_argument("--images", type=int, default=100, help="validation images to decode (the first N)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(diagnose(args.ckpt, args.images), indent=2))


if __name__ == "__main__":
    main()
