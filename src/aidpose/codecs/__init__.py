"""Keypoint codecs: keypoints ↔ training targets / network outputs."""

from aidpose.codecs.udp_heatmap import (
    UDPHeatmapCodec,
    decode_to_image,
    decode_udp_heatmaps,
    encode_udp_heatmaps,
    flip_back_heatmaps,
    heatmap_to_input,
)

__all__ = [
    "UDPHeatmapCodec",
    "decode_to_image",
    "decode_udp_heatmaps",
    "encode_udp_heatmaps",
    "flip_back_heatmaps",
    "heatmap_to_input",
]
