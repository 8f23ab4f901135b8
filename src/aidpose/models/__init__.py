"""Pose networks: timm backbones, heatmap heads and losses."""

from aidpose.models.backbones import TimmBackbone
from aidpose.models.heads import ConvHead, DeconvHead
from aidpose.models.losses import KeypointMSELoss
from aidpose.models.pose_net import PoseNet

__all__ = ["ConvHead", "DeconvHead", "KeypointMSELoss", "PoseNet", "TimmBackbone"]
