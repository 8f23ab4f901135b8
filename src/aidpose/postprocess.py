"""From decoded keypoints to COCO results: cross-rank gathering, rescoring and OKS-NMS."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch.distributed as dist

from aidpose.evaluation import oks_nms, soft_oks_nms
from aidpose.evaluation.results import rescore_by_keypoints


def gather_predictions(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-batch prediction dicts, gather them from every rank, drop duplicates.

    The distributed sampler pads the last batch with repeated samples; each instance carries its
    dataset ``index``, so keeping the first occurrence of every index restores the exact
    single-process prediction set, ordered by index.
    """
    local = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]} if outputs else {}
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[dict[str, np.ndarray]] = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(parts, local)
        parts = [p for p in parts if p]
        local = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if not local:
        return {}
    _, first = np.unique(local["index"], return_index=True)
    return {k: v[first] for k, v in local.items()}


def topdown_results(
    predictions: dict[str, np.ndarray],
    *,
    sigmas: np.ndarray,
    nms: str = "oks",
    nms_thr: float = 0.9,
    soft_nms_thr: float = 0.3,
    kpt_score_thr: float = 0.2,
    category_id: int = 1,
) -> list[dict]:
    """COCO keypoint results from top-down predictions.

    Each instance is rescored as HRNet/UDP do (box score × mean confidence of the keypoints above
    ``kpt_score_thr``), then per image OKS-NMS at ``nms_thr`` (``nms="oks"``), Gaussian soft-OKS-NMS at
    ``soft_nms_thr`` (``"soft_oks"``: overlapping poses keep decayed scores, at most 20 per image) or none.
    """
    if not predictions:
        return []
    if nms not in ("oks", "soft_oks", "none"):
        raise ValueError(f"test.nms={nms!r}: choose one of 'oks', 'soft_oks', 'none'")
    keypoints = predictions["keypoints"]
    scores = rescore_by_keypoints(predictions["bbox_score"], keypoints[..., 2], kpt_score_thr)
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, image_id in enumerate(predictions["image_id"].tolist()):
        by_image[image_id].append(i)
    results = []
    for image_id, members in by_image.items():
        idx = np.asarray(members)
        kpts, image_scores, areas = keypoints[idx], scores[idx], predictions["area"][idx]
        if nms == "oks":
            keep = oks_nms(kpts, image_scores, areas, sigmas, nms_thr)
            kept_scores = image_scores[keep]
        elif nms == "soft_oks":  # decays the scores of overlapping poses instead of dropping them
            keep, kept_scores = soft_oks_nms(kpts, image_scores, areas, sigmas, soft_nms_thr)
        else:
            keep, kept_scores = np.arange(len(idx)), image_scores
        for j, score in zip(np.asarray(keep).tolist(), np.asarray(kept_scores).tolist(), strict=True):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": category_id,
                    "keypoints": [round(float(v), 3) for v in kpts[j].reshape(-1)],
                    "score": float(score),
                }
            )
    return results
