"""``evaluate_results``: the one call that turns a COCO keypoint results list into metrics (and their table)."""

from __future__ import annotations

from dataclasses import replace

from aidpose.data.keypoints import get_layout
from aidpose.evaluation.annotations import AnnotationSource, load_ground_truth
from aidpose.evaluation.cocoeval import evaluate_coco
from aidpose.evaluation.crowdpose import evaluate_crowdpose
from aidpose.evaluation.results import ResultsSource, detections_from_results, load_results
from aidpose.evaluation.visibility import evaluate_visibility
from aidpose.tables import format_table

DATASETS = ("coco", "crowdpose", "aic")


def evaluate_results(
    ann_file: AnnotationSource, results: ResultsSource, dataset: str = "coco"
) -> dict[str, float]:
    """Keypoint metrics of ``results`` on the ground truth ``ann_file``.

    Args:
        ann_file: COCO-format keypoint annotation file (path, or the already-parsed dict).
        results: COCO keypoint results — a list of dicts with ``image_id``, ``category_id``,
            ``keypoints`` ([x, y, score] * K) and ``score`` — or the path of its JSON file.
        dataset: ``"coco"``, ``"crowdpose"`` or ``"aic"``.

    Returns:
        ``"coco"``: ``AP, AP50, AP75, APM, APL, AR, AR50, AR75, ARM, ARL`` equal to pycocotools
        ``COCOeval(iouType="keypoints")`` (20 detections per image, OKS thresholds 0.50:0.05:0.95), plus
        ``AP_vis`` and ``AP_invis``: the AP of the same predictions on a copy of the ground truth that
        keeps only visible keypoints (v=2; v=1 set to 0) and on one that keeps only occluded keypoints
        (v=1; v=2 set to 0), num_keypoints recounted and instances left without keypoints ignored, each
        instance keeping its full-person ``area`` as the OKS scale (see :mod:`aidpose.evaluation.visibility`).

        ``"crowdpose"``: ``AP, AP50, AP75, AR, AR50, AR75, AP_easy, AP_medium, AP_hard`` equal to the
        official CrowdPose evaluation (OKS area ``0.53 * box area``, crowdIndex split at 0.2 and 0.8;
        see :mod:`aidpose.evaluation.crowdpose`).

        ``"aic"``: the ``"coco"`` numbers with AI Challenger's 14 OKS sigmas and, for OKS and the area ranges,
        0.53 × each person's box area in place of ``area`` (mmpose evaluates AIC with ``CocoMetric(use_area=False)``,
        xtcocotools' ``COCOeval(use_area=False)``).

        Empty results give 0 for every metric that has ground truth. A metric with no ground truth to
        score against (e.g. APM without medium-sized people) is -1, as in pycocotools.

    Raises:
        ValueError: a results entry is malformed (missing field, wrong number of keypoints, NaN/inf,
            image or category id not in the annotation file) — the message names the first such entry
            by index and image_id; or the annotation file lacks what the protocol needs.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    layout = get_layout(dataset)
    gt = load_ground_truth(ann_file, layout.num_keypoints)
    dt = detections_from_results(load_results(results), gt)
    if dataset == "crowdpose":
        return evaluate_crowdpose(gt, dt, layout.sigmas)
    if dataset == "aic":
        gt = replace(gt, area=0.53 * gt.bbox[:, 2] * gt.bbox[:, 3])
    return {**evaluate_coco(gt, dt, layout.sigmas), **evaluate_visibility(gt, dt, layout.sigmas)}


def format_metrics(metrics: dict[str, float]) -> str:
    """Two-column text table of the metrics, values to 4 decimals ("n/a" where undefined: -1)."""
    rows = [[name, "n/a" if value == -1 else f"{value:.4f}"] for name, value in metrics.items()]
    return format_table(["metric", "value"], rows, "<>")
