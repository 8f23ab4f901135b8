"""The contract every keypoint codec keeps, so that datasets, modules and inference never ask which one it is.

A codec turns one sample's keypoints into the named training targets of its loss (:meth:`KeypointCodec.encode`),
says what the network must output (:meth:`~KeypointCodec.output_channels`, :meth:`~KeypointCodec.check_output_size`),
mirrors outputs back for the flip test (:meth:`~KeypointCodec.flip_back`, :meth:`~KeypointCodec.merge_flip`) and
turns outputs into people in image pixels (:meth:`~KeypointCodec.decode`). The sample pipeline stores every
target of ``encode`` in the item under its name; the paradigm's loss reads the targets it needs by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TEST_OPTIONS = {
    "flip": "flip_test",
    "blur_kernel": "blur_kernel",
    "scales": "scales",
    "tags_all_scales": "tags_all_scales",
    "size_divisor": "size_divisor",
    "size_rule": "size_rule",
    "dark_before_fill": "dark_before_fill",
}
"""Every ``test.KEY`` that changes decoding → the codec argument it sets (``aidpose.builders.build_codec``)."""


@dataclass(frozen=True)
class Prediction:
    """People: keypoints ``(P, K, 3)`` [x, y, score] in image pixels and one score per person ``(P,)``."""

    keypoints: np.ndarray
    scores: np.ndarray


class KeypointCodec(ABC):
    """Keypoints ↔ training targets and network outputs (every codec's interface).

    Attributes every codec has: ``input_size`` (width, height) of the network input in training, and
    ``flip_test`` (decode with the mirrored input too, ``test.flip``).
    """

    input_size: tuple[int, int]
    flip_test: bool

    @abstractmethod
    def output_channels(self, num_keypoints: int) -> int | list[int]:
        """Channels of the network's output (a head with one output), or of each output (a head returning a
        list); the head is built with them."""

    @abstractmethod
    def check_output_size(self, output_sizes: Sequence[Sequence[int]], network: str) -> None:
        """A clear error naming the options to change when the network's outputs ``[(width, height), ...]``
        (one per output) are not the sizes the codec encodes; ``network`` names the network in the message."""

    @abstractmethod
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, Any]:
        """Named targets of one sample from its people's keypoints ``(N, K, 2)`` in input pixels and their COCO
        visibility ``(N, K)`` (0: not labelled): arrays (or lists of arrays) that batch with the default
        collate, stored in the item under their names."""

    @abstractmethod
    def flip_back(self, outputs: Any, flip_index: Sequence[int] | np.ndarray) -> Any:
        """Outputs of a mirrored input → the outputs of the original input (left/right swapped by
        ``flip_index``)."""

    def merge_flip(self, outputs: Any, mirrored: Any, flip_index: Sequence[int] | np.ndarray) -> Any:
        """The flip test: outputs of an input and of its mirror in one (here: their mean, after flip-back; of
        each output, for a list of outputs)."""
        flipped = self.flip_back(mirrored, flip_index)
        if isinstance(outputs, (list, tuple)):
            return [0.5 * (o + m) for o, m in zip(outputs, flipped, strict=True)]
        return 0.5 * (outputs + flipped)

    @abstractmethod
    def decode(self, outputs: Any, to_image: np.ndarray) -> Prediction:
        """People in image pixels from network outputs and the matrices that map them to the image."""
