"""Keypoint codecs: keypoints ↔ training targets / network outputs, behind one contract (``codecs.base``)."""

from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.codecs.base import TEST_OPTIONS, KeypointCodec, Prediction
from aidpose.codecs.megvii_heatmap import MegviiHeatmapCodec
from aidpose.codecs.udp_combined import UDPCombinedCodec
from aidpose.codecs.udp_heatmap import (
    CropMapCodec,
    UDPHeatmapCodec,
    decode_to_image,
    decode_udp_heatmaps,
    encode_udp_heatmaps,
    flip_back_heatmaps,
    heatmap_to_input,
)

__all__ = [
    "TEST_OPTIONS",
    "AssociativeEmbeddingCodec",
    "CropMapCodec",
    "KeypointCodec",
    "MegviiHeatmapCodec",
    "Prediction",
    "UDPCombinedCodec",
    "UDPHeatmapCodec",
    "decode_to_image",
    "decode_udp_heatmaps",
    "encode_udp_heatmaps",
    "flip_back_heatmaps",
    "heatmap_to_input",
]
