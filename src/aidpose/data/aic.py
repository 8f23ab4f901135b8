"""AI Challenger keypoints (Wu et al., 2017) and their mapping onto COCO's 17 for a COCO + AIC training mix.

AIC labels 14 joints: the 12 limb joints COCO has, plus head top and neck. Mixed with COCO as extra data (the
paper's "extra data" rows), each AIC person becomes a COCO person: its limb joints move to COCO's indices, the
five face joints stay unlabelled (visibility 0), head top and neck are dropped. This is mmpose 1.x's
``KeypointConverter(num_keypoints=17, mapping=...)`` in ``td-hm_hrnet-w32_8xb64-210e_coco-aic-256x192-merge.py``
(``configs/_base_/datasets/coco_aic.py`` is the other option, a 19-joint union of both layouts). The layout
(``aidpose.data.keypoints.AIC``: names, skeleton, flip pairs, OKS sigmas) follows ``configs/_base_/datasets/aic.py``.
Annotations are the COCO-style JSON that toolboxes convert AIC to (visibility 0 unlabelled, 1 occluded, 2 visible).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aidpose.data.keypoints import AIC, COCO

# (AIC index, COCO index) of every joint both layouts have; AIC's head top (12) and neck (13) have none
AIC_TO_COCO: tuple[tuple[int, int], ...] = (
    (0, 6), (1, 8), (2, 10), (3, 5), (4, 7), (5, 9), (6, 12), (7, 14), (8, 16), (9, 11), (10, 13), (11, 15),
)  # fmt: skip


def map_keypoints(keypoints: np.ndarray, mapping: Sequence[tuple[int, int]], num_target: int) -> np.ndarray:
    """Keypoints ``(..., K_source, C)`` → ``(..., num_target, C)``: ``out[..., t] = in[..., s]`` for each
    ``(s, t)`` in ``mapping``; target joints no source maps to are all zero (unlabelled)."""
    keypoints = np.asarray(keypoints)
    source, target = (list(idx) for idx in zip(*mapping, strict=True))
    out = np.zeros((*keypoints.shape[:-2], num_target, keypoints.shape[-1]), dtype=keypoints.dtype)
    out[..., target, :] = keypoints[..., source, :]
    return out


def aic_annotation_to_coco(annotation: dict) -> dict:
    """A COCO-style AIC person annotation (14 × (x, y, v)) as a COCO one (17 × (x, y, v)).

    Every other field is kept; ``num_keypoints`` is recounted (labelled joints left after the mapping).
    """
    flat = annotation.get("keypoints", [])
    if len(flat) != 3 * AIC.num_keypoints:
        raise ValueError(
            f"AIC annotation id={annotation.get('id')}: 'keypoints' has {len(flat)} values, an AIC person has "
            f"{3 * AIC.num_keypoints} (14 joints × x, y, v); is this file AIC's?"
        )
    mapped = map_keypoints(np.asarray(flat, dtype=np.float64).reshape(AIC.num_keypoints, 3), AIC_TO_COCO, 17)
    return {
        **annotation,
        "keypoints": mapped.ravel().tolist(),
        "num_keypoints": int((mapped[:, 2] > 0).sum()),
    }


def aic_dataset_to_coco(dataset: dict) -> dict:
    """A COCO-style AIC keypoint file (``images``, ``annotations``, ``categories``) in COCO's 17-joint layout:
    every annotation converted (:func:`aic_annotation_to_coco`), the person category given COCO's keypoint names
    and skeleton."""
    converted = {k: v for k, v in dataset.items() if k not in ("annotations", "categories")}
    converted["annotations"] = [aic_annotation_to_coco(a) for a in dataset.get("annotations", [])]
    converted["categories"] = [
        {
            **c,
            "keypoints": list(COCO.keypoint_names),
            "skeleton": [list(s) for s in COCO.skeleton],
        }
        for c in dataset.get("categories", [])
    ]
    return converted
