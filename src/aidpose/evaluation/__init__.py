"""Exact and fast COCO / CrowdPose keypoint evaluation, OKS-NMS and result rescoring."""

from aidpose.evaluation.api import evaluate_results
from aidpose.evaluation.nms import oks_nms, soft_oks_nms
from aidpose.evaluation.results import rescore_by_keypoints

__all__ = ["evaluate_results", "oks_nms", "rescore_by_keypoints", "soft_oks_nms"]
