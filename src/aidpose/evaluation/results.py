"""COCO keypoint results: building them from predictions (top-down: rescoring, OKS-NMS), loading, validation."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aidpose.evaluation.annotations import GroundTruth
from aidpose.evaluation.nms import oks_nms, soft_oks_nms

ResultsSource = str | Path | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Detections:
    """Scored keypoint detections in results order."""

    image_index: np.ndarray  # (N,) position of the detection's image in GroundTruth.image_ids
    category_id: np.ndarray  # (N,)
    keypoints: np.ndarray  # (N, K, 3) x, y, score
    score: np.ndarray  # (N,)
    area: np.ndarray  # (N,) as pycocotools' loadRes sets it (see detections_from_results)


def load_results(source: ResultsSource) -> list[Mapping[str, Any]]:
    """Return the results list, reading it from JSON when given a path."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"results file {path} does not exist")
        with path.open() as f:
            source = json.load(f)
    if not isinstance(source, Sequence) or isinstance(source, (str, bytes)):
        raise ValueError(f"results must be a list of COCO keypoint result dicts, got {type(source).__name__}")
    return list(source)


def _describe(results: Sequence[Any], i: int) -> str:
    entry = results[i]
    image_id = entry.get("image_id") if isinstance(entry, Mapping) else None
    return f"results entry {i} (image_id={image_id})"


def _column(results: Sequence[Any], key: str) -> list[Any]:
    """Values of one field of every entry, or a ValueError naming the first entry without it."""
    try:
        return [entry[key] for entry in results]
    except (KeyError, TypeError, IndexError):
        for i, entry in enumerate(results):
            if not isinstance(entry, Mapping) or key not in entry:
                raise ValueError(
                    f"{_describe(results, i)} has no {key!r} field; every entry needs {key!r}"
                ) from None
        raise


def _first_failure(results: Sequence[Any], values: list[Any], key: str, check: Any) -> ValueError:
    """ValueError naming the first entry whose ``check(value)`` raises."""
    for i, value in enumerate(values):
        try:
            check(value)
        except (TypeError, ValueError):
            return ValueError(f"{_describe(results, i)} has a non-numeric {key!r}: {value!r}")
    return ValueError(f"results have a non-numeric {key!r}")


def _lengths(results: Sequence[Any], values: list[Any], key: str) -> np.ndarray:
    try:
        return np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    except TypeError:
        raise _first_failure(results, values, key, len) from None


def _finite(results: Sequence[Any], array: np.ndarray, key: str) -> np.ndarray:
    finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"{_describe(results, int(np.argmin(finite)))} has a NaN or infinite value in {key!r}"
        )
    return array


def _numeric_rows(results: Sequence[Any], values: list[Any], key: str, length: int) -> np.ndarray:
    """Stack per-entry number lists of one length into a finite float array, naming the first bad entry."""
    lengths = _lengths(results, values, key)
    if np.any(lengths != length):
        i = int(np.argmax(lengths != length))
        raise ValueError(f"{_describe(results, i)} has {key!r} of length {lengths[i]}, expected {length}")
    try:
        array = np.array(values, dtype=np.float64).reshape(len(values), length)
    except (TypeError, ValueError):
        raise _first_failure(results, values, key, lambda v: np.array(v, dtype=np.float64)) from None
    return _finite(results, array, key)


def _numbers(results: Sequence[Any], values: list[Any], key: str) -> np.ndarray:
    """One finite float per entry, naming the first bad entry."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != (len(values),):
        raise _first_failure(results, values, key, float)
    return _finite(results, array, key)


def _position(known: Mapping[Any, int], value: Any) -> int:
    """Position of ``value`` in ``known``, -1 when absent or unhashable."""
    try:
        return known.get(value, -1)
    except TypeError:  # unhashable, e.g. a list
        return -1


def _lookup(results: Sequence[Any], values: list[Any], known: Mapping[Any, int], what: str) -> np.ndarray:
    """Positions of ``values`` in ``known``, or a ValueError naming the first unknown one."""
    index = np.array([_position(known, v) for v in values], dtype=np.int64)
    if len(index) and index.min() < 0:
        i = int(np.argmin(index))
        raise ValueError(
            f"{_describe(results, i)} has {what} {values[i]!r}, which the annotation file does not contain"
        )
    return index


def detections_from_results(results: Sequence[Mapping[str, Any]], gt: GroundTruth) -> Detections:
    """Validate COCO keypoint results against ``gt`` and convert them to arrays.

    Raises a ValueError naming the first offending entry (index and image_id) when a field is missing,
    ``keypoints`` has the wrong length or a non-finite value, ``score`` is not finite, or the image or
    category id is not in the annotation file.

    The detection area used for the area-range rule follows pycocotools ``COCO.loadRes``: when the first
    entry carries a non-empty ``bbox``, every entry's area is its box ``w * h``; otherwise it is the extent
    of all keypoints, ``(max x - min x) * (max y - min y)``.
    """
    num_keypoints = gt.keypoints.shape[1]
    if not results:
        return Detections(
            image_index=np.zeros(0, dtype=np.int64),
            category_id=np.zeros(0, dtype=np.int64),
            keypoints=np.zeros((0, num_keypoints, 3)),
            score=np.zeros(0),
            area=np.zeros(0),
        )
    image_ids = _column(results, "image_id")
    image_index = _lookup(results, image_ids, {v: i for i, v in enumerate(gt.image_ids.tolist())}, "image_id")
    category_ids = _column(results, "category_id")
    _lookup(results, category_ids, {v: i for i, v in enumerate(gt.category_ids.tolist())}, "category_id")
    keypoints = _numeric_rows(results, _column(results, "keypoints"), "keypoints", 3 * num_keypoints)
    keypoints = keypoints.reshape(-1, num_keypoints, 3)
    score = _numbers(results, _column(results, "score"), "score")
    first_box = results[0].get("bbox")
    if first_box is not None and len(first_box) > 0:
        boxes = _numeric_rows(results, _column(results, "bbox"), "bbox", 4)
        area = boxes[:, 2] * boxes[:, 3]
    else:
        x, y = keypoints[..., 0], keypoints[..., 1]
        area = (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))
    return Detections(
        image_index=image_index,
        category_id=np.array(category_ids, dtype=np.int64),
        keypoints=keypoints,
        score=score,
        area=area,
    )


def rescore_by_keypoints(box_scores: np.ndarray, keypoint_scores: np.ndarray, thr: float = 0.2) -> np.ndarray:
    """HRNet/UDP instance score: box score x mean confidence of the keypoints scoring above ``thr``.

    ``box_scores`` (N,), ``keypoint_scores`` (N, K). An instance with no keypoint above ``thr`` scores 0.
    """
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    above = keypoint_scores > thr
    count = above.sum(axis=1)
    total = np.where(above, keypoint_scores, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return np.asarray(box_scores, dtype=np.float64) * mean


def suppress_people(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    *,
    sigmas: np.ndarray,
    nms: str = "oks",
    nms_thr: float = 0.9,
    soft_nms_thr: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """The poses ``(N, K, 3)`` of one image that NMS keeps and their scores: OKS-NMS at ``nms_thr``
    (``nms="oks"``), Gaussian soft-OKS-NMS at ``soft_nms_thr`` (``"soft_oks"``: overlapping poses keep decayed
    scores, at most 20 per image) or none."""
    if nms == "oks":
        keep = oks_nms(keypoints, scores, areas, sigmas, nms_thr)
        return np.asarray(keep), scores[keep]
    if nms == "soft_oks":  # decays the scores of overlapping poses instead of dropping them
        keep, kept_scores = soft_oks_nms(keypoints, scores, areas, sigmas, soft_nms_thr)
        return np.asarray(keep), np.asarray(kept_scores)
    if nms == "none":
        return np.arange(len(keypoints)), scores
    raise ValueError(f"test.nms={nms!r}: choose one of 'oks', 'soft_oks', 'none'")


def topdown_results(
    predictions: dict[str, np.ndarray],
    *,
    sigmas: np.ndarray,
    nms: str = "oks",
    nms_thr: float = 0.9,
    soft_nms_thr: float = 0.3,
    kpt_score_thr: float = 0.2,
) -> list[dict]:
    """COCO keypoint results from top-down predictions.

    Each instance is rescored as HRNet/UDP do (box score × mean confidence of the keypoints above
    ``kpt_score_thr``), then suppressed per image (:func:`suppress_people`).
    """
    if not predictions:
        return []
    keypoints = predictions["keypoints"]
    scores = rescore_by_keypoints(predictions["bbox_score"], keypoints[..., 2], kpt_score_thr)
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, image_id in enumerate(predictions["image_id"].tolist()):
        by_image[image_id].append(i)
    kept: dict[str, list[np.ndarray]] = {"image_id": [], "keypoints": [], "score": []}
    for image_id, members in by_image.items():
        idx = np.asarray(members)
        keep, kept_scores = suppress_people(
            keypoints[idx], scores[idx], predictions["area"][idx],
            sigmas=sigmas, nms=nms, nms_thr=nms_thr, soft_nms_thr=soft_nms_thr,
        )  # fmt: skip
        kept["image_id"].append(np.full(len(keep), image_id))
        kept["keypoints"].append(keypoints[idx][keep])
        kept["score"].append(kept_scores)
    return coco_results({key: np.concatenate(parts) for key, parts in kept.items()})


def coco_results(predictions: dict[str, np.ndarray], category_id: int = 1) -> list[dict]:
    """COCO keypoint results, one per person: ``image_id`` (N,), ``keypoints`` (N, K, 3) in image pixels
    (rounded to 3 decimals) and ``score`` (N,)."""
    if not predictions:
        return []
    return [
        {
            "image_id": int(image_id),
            "category_id": category_id,
            "keypoints": [round(float(v), 3) for v in kpts.reshape(-1)],
            "score": float(score),
        }
        for image_id, kpts, score in zip(
            predictions["image_id"].tolist(), predictions["keypoints"], predictions["score"], strict=True
        )
    ]
