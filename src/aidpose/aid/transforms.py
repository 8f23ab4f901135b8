"""The AID droppers as albumentations 2.x ``DualTransform``s with a fast ``drop()`` path for aidpose.

Each dropper hides image appearance and changes no label: keypoints, boxes and masks pass through
untouched, so the heatmap supervision of a hidden keypoint stays (AID, Huang et al. 2020). Both paths
sample the dropped region with the same functions of :mod:`aidpose.aid.masks`:

* albumentations: ``A.Compose([Cutout()], keypoint_params=A.KeypointParams(format="xy",
  remove_invisible=False), seed=...)``; the applied params (``Compose(save_applied_params=True)``)
  hold the sampled region, its ``drop_mask`` (H×W bool) and the ``dropped_keypoints`` flags;
* aidpose's sample pipeline: ``image, dropped = dropper.drop(image, keypoints, rng)``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from albumentations.core.transforms_interface import DualTransform
from albumentations.core.type_definitions import NUM_KEYPOINTS_COLUMNS_IN_ALBUMENTATIONS, Targets

from aidpose.aid.fill import Fill, check_fill, fill_masked
from aidpose.aid.masks import (
    DropMask,
    boxes_mask,
    candidate_keypoints,
    cutout_mask,
    dropped_keypoints,
    gridmask_mask,
    has_mask,
    relative_to_pixels,
    sample_cutout_holes,
    sample_erasing_box,
    sample_gridmask,
    sample_has_cells,
)

__all__ = ["Cutout", "GridMask", "HideAndSeek", "InformationDropper", "RandomErasing", "Strength"]

REFERENCE_WIDTH = 192
"""Crop width (px) at which the paper's pixel-valued dropper settings were chosen (256×192 crops): HaS
cell sizes and GridMask periods are those pixel values divided by it, i.e. fractions of the crop width."""

STRENGTH_MODES = ("value", "scale", "upper")
"""How a strength value sets the dropper argument: ``value`` (the argument is the value), ``scale`` (a
numeric or [lo, hi] argument is multiplied by it: 1 = the configured strength), ``upper`` (a [lo, hi]
argument gets hi = value, lo as configured)."""


@dataclass(frozen=True)
class Strength:
    """The constructor argument that sets how much a dropper hides, declared by each dropper class.

    ``python -m aidpose.calibrate`` searches a value in ``[low, high]`` that sets ``param`` per ``mode``
    (:data:`STRENGTH_MODES`); the test-time occlusion sweep (``test.occlusion_levels``) varies ``param``.
    """

    param: str
    mode: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.mode not in STRENGTH_MODES:
            raise ValueError(f"strength mode={self.mode!r} is not one of {STRENGTH_MODES}")
        if not self.low < self.high:
            raise ValueError(f"strength range [{self.low}, {self.high}] of {self.param} must have low < high")


def _as_xy(keypoints: Any) -> np.ndarray:
    """K×2 float xy from a K×2 (or K×(2+n)) array-like; an empty input gives 0×2."""
    points = np.asarray(keypoints, dtype=np.float64)
    if points.size == 0:
        return np.zeros((0, 2))
    if points.ndim != 2 or points.shape[1] < 2:
        raise ValueError(f"keypoints must be a K×2 array of xy coordinates, got shape {points.shape}")
    return points[:, :2]


def _pair(
    owner: str, name: str, value: Sequence[float], kind: type, low: float, high: float | None = None
) -> tuple:
    """Validate a (lo, hi) option with low ≤ lo ≤ hi (≤ high)."""
    try:
        lo, hi = (kind(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be two numbers (lo, hi), got {value!r}") from None
    if not (low <= lo <= hi and (high is None or hi <= high)):
        bound = f"{low} ≤ lo ≤ hi" + ("" if high is None else f" ≤ {high}")
        raise ValueError(f"{owner}: {name}={value!r} must satisfy {bound}")
    return lo, hi


def _fractions(owner: str, name: str, value: Sequence[float], low: float, high: float, hint: str) -> tuple:
    """Validate a non-empty list of fractions of the image width in [low, high]."""
    try:
        fractions = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a list of numbers, got {value!r}") from None
    if not fractions or not all(low <= f <= high for f in fractions):
        raise ValueError(
            f"{owner}: {name}={value!r} must be a non-empty list of fractions of the crop width in "
            f"[{low}, {high}] (pixel values at a {REFERENCE_WIDTH}-px-wide crop / {REFERENCE_WIDTH}, e.g. {hint})"
        )
    return fractions


def _choice(owner: str, name: str, value: Any, options: tuple) -> Any:
    if value not in options:
        raise ValueError(f"{owner}: {name}={value!r} is not one of {options}")
    return value


class InformationDropper(DualTransform):
    """Base of the AID droppers: sample a region, fill its pixels, leave every label unchanged.

    Subclasses define ``sample_region`` (all randomness, from the given generator), ``region_mask`` and
    ``strength`` (which argument sets how much they hide).
    """

    _targets = (Targets.IMAGE, Targets.MASK, Targets.BBOXES, Targets.KEYPOINTS)
    strength: ClassVar[Strength | None] = None

    def __init__(self, fill: Fill, p: float):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p={p} must be a probability in [0, 1]")
        super().__init__(p=p)
        self.fill = check_fill(fill, type(self).__name__)

    @abstractmethod
    def sample_region(
        self,
        rng: np.random.Generator,
        height: int,
        width: int,
        keypoints: np.ndarray,
        visibility: np.ndarray | None,
    ) -> dict[str, Any]:
        """The dropped region's parameters for an H×W image (keypoints: K×2 xy)."""

    @abstractmethod
    def region_mask(self, region: dict[str, Any], height: int, width: int) -> DropMask:
        """The dropped pixels of a region from ``sample_region``."""

    # ------------------------------------------------------------------ aidpose's fast path

    def drop(
        self,
        image: np.ndarray,
        keypoints: np.ndarray,
        rng: np.random.Generator,
        *,
        visibility: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply the dropper with probability ``p``; return (image, dropped).

        ``image`` (H×W or H×W×C, uint8 or float32) is modified in place when writable and C-contiguous.
        ``dropped`` (K,) marks the keypoints (K×2 xy) whose pixel (floor(y + 0.5), floor(x + 0.5)) is
        inside the image and was dropped. ``visibility`` (COCO v per keypoint) only matters to
        keypoint-targeted Cutout, which then centres holes on labelled keypoints only.
        """
        xy = _as_xy(keypoints)
        if self.p <= 0.0 or (self.p < 1.0 and rng.random() >= self.p):
            return image, np.zeros(len(xy), dtype=bool)
        height, width = image.shape[:2]
        drop = self.region_mask(self.sample_region(rng, height, width, xy, visibility), height, width)
        return fill_masked(image, drop, self.fill, rng), dropped_keypoints(drop, xy)

    # ------------------------------------------------------------------ albumentations

    def keypoint_visibility(self, keypoints: np.ndarray) -> np.ndarray | None:
        """COCO visibility of albumentations' internal keypoints, when the dropper uses it (else None)."""
        return None

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        keypoints = data.get("keypoints")
        xy = _as_xy([] if keypoints is None else keypoints)
        visibility = (
            None if keypoints is None or len(xy) == 0 else self.keypoint_visibility(np.asarray(keypoints))
        )
        region = self.sample_region(self.random_generator, height, width, xy, visibility)
        drop = self.region_mask(region, height, width)
        return {
            **region,
            "drop": drop,
            "drop_mask": drop.full(),
            "dropped_keypoints": dropped_keypoints(drop, xy),
            "fill_seed": int(self.random_generator.integers(2**32)),
        }

    def apply(self, img: np.ndarray, drop: DropMask, fill_seed: int, **params: Any) -> np.ndarray:
        if not drop.local.any():
            return img
        return fill_masked(img.copy(), drop, self.fill, np.random.default_rng(fill_seed))

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return mask

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        return bboxes

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        return keypoints


class Cutout(InformationDropper):
    """AID's Cutout (best top-down dropper): elliptical holes, optionally centred on keypoints.

    Args:
        num_holes_range: number of holes per image, uniform and inclusive.
        size_range: each semi-axis uniform in this range × image width (independently per axis).
        shape: ``"ellipse"`` (AID) or ``"rectangle"`` (half-sides = the semi-axes).
        center: ``"uniform"`` over the image, or ``"keypoint"``: a randomly chosen labelled keypoint plus a
            Gaussian offset (falls back to uniform when the image has no candidate keypoint).
        center_jitter: standard deviation of that offset per axis, × image width.
        visibility_field: for ``center="keypoint"`` under albumentations, the ``KeypointParams`` label field
            holding COCO visibility (only v > 0 keypoints are targeted); without it every keypoint inside
            the image is a candidate. ``drop()`` takes ``visibility=`` instead.
        fill: 0, a value per channel, ``"mean"`` (ImageNet mean, RGB) or ``"random"`` (uniform noise).
        p: probability of applying.
    """

    strength = Strength("size_range", "scale", 0.25, 2.5)  # hole size, × the configured [0.2, 0.4]

    def __init__(
        self,
        num_holes_range: tuple[int, int] = (1, 1),
        size_range: tuple[float, float] = (0.2, 0.4),
        shape: Literal["ellipse", "rectangle"] = "ellipse",
        center: Literal["uniform", "keypoint"] = "uniform",
        center_jitter: float = 0.2,
        visibility_field: str | None = None,
        fill: Fill = 0.0,
        p: float = 1.0,
    ):
        super().__init__(fill=fill, p=p)
        self.num_holes_range = _pair("Cutout", "num_holes_range", num_holes_range, int, 0)
        self.size_range = _pair("Cutout", "size_range", size_range, float, 1e-9)
        self.shape = _choice("Cutout", "shape", shape, ("ellipse", "rectangle"))
        self.center = _choice("Cutout", "center", center, ("uniform", "keypoint"))
        if not center_jitter >= 0:
            raise ValueError(f"Cutout: center_jitter={center_jitter} must be ≥ 0")
        self.center_jitter = float(center_jitter)
        self.visibility_field = visibility_field

    def sample_region(
        self,
        rng: np.random.Generator,
        height: int,
        width: int,
        keypoints: np.ndarray,
        visibility: np.ndarray | None,
    ) -> dict[str, Any]:
        candidates = None
        if self.center == "keypoint":
            candidates = candidate_keypoints(keypoints, height, width, visibility)
        holes = sample_cutout_holes(
            rng, height, width, self.num_holes_range, self.size_range, candidates, self.center_jitter
        )
        return {"holes": holes}

    def region_mask(self, region: dict[str, Any], height: int, width: int) -> DropMask:
        return cutout_mask(height, width, region["holes"], self.shape)

    def keypoint_visibility(self, keypoints: np.ndarray) -> np.ndarray | None:
        if self.center != "keypoint" or self.visibility_field is None:
            return None
        processor = self.get_processor("keypoints")
        fields = list(processor.params.label_fields or []) if processor is not None else []
        if self.visibility_field not in fields:
            raise ValueError(
                f"Cutout(visibility_field={self.visibility_field!r}) needs it among the label fields of "
                f"A.Compose(keypoint_params=A.KeypointParams(..., label_fields=[...])), got {fields}"
            )
        return keypoints[:, NUM_KEYPOINTS_COLUMNS_IN_ALBUMENTATIONS + fields.index(self.visibility_field)]


class RandomErasing(InformationDropper):
    """Random Erasing (Zhong et al. 2020): one rectangle of random area and aspect ratio.

    Args:
        area_range: erased area as a fraction of the image area, uniform.
        aspect_range: aspect ratio (height / width), uniform.
        max_attempts: draws of (area, aspect) until the rectangle fits; none fits → nothing is erased.
        fill: ``"mean"`` (ImageNet mean, RGB), a value per channel, 0 or ``"random"`` (uniform noise).
        p: probability of applying.
    """

    strength = Strength("area_range", "upper", 0.05, 1.0)  # largest erased area / crop area

    def __init__(
        self,
        area_range: tuple[float, float] = (0.02, 0.4),
        aspect_range: tuple[float, float] = (0.3, 1 / 0.3),
        max_attempts: int = 100,
        fill: Fill = "mean",
        p: float = 0.5,
    ):
        super().__init__(fill=fill, p=p)
        self.area_range = _pair("RandomErasing", "area_range", area_range, float, 0.0, 1.0)
        self.aspect_range = _pair("RandomErasing", "aspect_range", aspect_range, float, 1e-9)
        if int(max_attempts) < 1:
            raise ValueError(f"RandomErasing: max_attempts={max_attempts} must be ≥ 1")
        self.max_attempts = int(max_attempts)

    def sample_region(
        self,
        rng: np.random.Generator,
        height: int,
        width: int,
        keypoints: np.ndarray,
        visibility: np.ndarray | None,
    ) -> dict[str, Any]:
        box = sample_erasing_box(rng, height, width, self.area_range, self.aspect_range, self.max_attempts)
        return {"boxes": box}

    def region_mask(self, region: dict[str, Any], height: int, width: int) -> DropMask:
        return boxes_mask(height, width, region["boxes"])


class HideAndSeek(InformationDropper):
    """Hide-and-Seek (Singh & Lee 2017), AID's best bottom-up dropper: hide random g×g cells.

    Args:
        cell_sizes: cell sizes as fractions of the image width, one drawn uniformly per image (0 hides
            nothing); g = round(fraction × width) pixels, at least 1. The default is AID's (0, 16, 32, 44)
            px at a 192-px-wide crop, so the cells cover the same share of a crop at every input size.
        hide_prob: probability of hiding each cell.
        fill: 0, a value per channel, ``"mean"`` (ImageNet mean, RGB) or ``"random"`` (uniform noise).
        p: probability of applying.
    """

    strength = Strength("hide_prob", "value", 0.0, 1.0)  # probability of hiding each cell

    def __init__(
        self,
        cell_sizes: Sequence[float] = (0.0, 0.08333333, 0.16666667, 0.22916667),  # (0, 16, 32, 44) px / 192
        hide_prob: float = 0.5,
        fill: Fill = 0.0,
        p: float = 1.0,
    ):
        super().__init__(fill=fill, p=p)
        self.cell_sizes = _fractions("HideAndSeek", "cell_sizes", cell_sizes, 0.0, 1.0, "16 px → 0.0833")
        if not 0.0 <= hide_prob <= 1.0:
            raise ValueError(f"HideAndSeek: hide_prob={hide_prob} must be a probability in [0, 1]")
        self.hide_prob = float(hide_prob)

    def sample_region(
        self,
        rng: np.random.Generator,
        height: int,
        width: int,
        keypoints: np.ndarray,
        visibility: np.ndarray | None,
    ) -> dict[str, Any]:
        sizes = [relative_to_pixels(size, width) for size in self.cell_sizes]
        grid_size, hidden = sample_has_cells(rng, height, width, sizes, self.hide_prob)
        return {"grid_size": grid_size, "hidden_cells": hidden}

    def region_mask(self, region: dict[str, Any], height: int, width: int) -> DropMask:
        return has_mask(height, width, region["grid_size"], region["hidden_cells"])


class GridMask(InformationDropper):
    """GridMask (Chen et al. 2020): a regular grid of dropped squares (or bands), random period and offset.

    Args:
        period_range: grid period d as fractions of the image width, (lo, hi); d is uniform over the
            integer pixels round(lo × width) … round(hi × width), inclusive. The default is the reference
            run's (96, 224) px at a 192-px-wide crop, so the grid looks the same at every input size.
        ratio: band width l = ⌊d·ratio + 0.5⌋ (the paper's r); mode 1 keeps 1 − (1 − r)² of the image.
        rotate: the grid is rotated by an angle uniform in [0, rotate) degrees (0: no rotation).
        mode: 1 drops the (d − l)² squares between the bands, 0 drops the bands.
        fill: ``"mean"`` (ImageNet mean, RGB), 0, a value per channel or ``"random"`` (uniform noise).
        p: probability of applying.
    """

    strength = Strength("ratio", "value", 0.05, 0.95)  # band width / period (mode 1: kept ratio)

    def __init__(
        self,
        period_range: tuple[float, float] = (0.5, 1.16666667),  # (96, 224) px / 192
        ratio: float = 0.5,
        rotate: float = 0.0,
        mode: Literal[0, 1] = 1,
        fill: Fill = "mean",
        p: float = 1.0,
    ):
        super().__init__(fill=fill, p=p)
        self.period_range = _pair("GridMask", "period_range", period_range, float, 1e-9, 4.0)
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"GridMask: ratio={ratio} must be in (0, 1)")
        self.ratio = float(ratio)
        if not 0.0 <= rotate <= 360.0:
            raise ValueError(f"GridMask: rotate={rotate} must be in [0, 360] degrees")
        self.rotate = float(rotate)
        self.mode = _choice("GridMask", "mode", mode, (0, 1))

    def sample_region(
        self,
        rng: np.random.Generator,
        height: int,
        width: int,
        keypoints: np.ndarray,
        visibility: np.ndarray | None,
    ) -> dict[str, Any]:
        lo, hi = (relative_to_pixels(size, width) for size in self.period_range)
        period, band, offset_y, offset_x, angle = sample_gridmask(rng, (lo, hi), self.ratio, self.rotate)
        return {"period": period, "band": band, "offset_y": offset_y, "offset_x": offset_x, "angle": angle}

    def region_mask(self, region: dict[str, Any], height: int, width: int) -> DropMask:
        return gridmask_mask(
            height,
            width,
            region["period"],
            region["band"],
            region["offset_y"],
            region["offset_x"],
            region["angle"],
            self.mode,
        )


def declared_strength(target: str) -> Strength | None:
    """The :class:`Strength` declared by the dropper class ``target`` (a ``_target_`` path), or None."""
    from hydra.utils import get_class

    strength = getattr(get_class(target), "strength", None)
    return strength if isinstance(strength, Strength) else None
