"""Dropper strength is relative to the crop: the same share is dropped at every input size."""

from __future__ import annotations

import numpy as np
import pytest

from aidpose.aid import Cutout, GridMask, HideAndSeek, RandomErasing, dropped_area_share
from aidpose.aid.masks import relative_to_pixels

SMALL, LARGE = (128, 96), (256, 192)


def test_relative_sizes_round_to_the_papers_pixels():
    has, grid = HideAndSeek(), GridMask()
    assert [relative_to_pixels(f, 192) for f in has.cell_sizes] == [0, 16, 32, 44]  # the official values
    assert [relative_to_pixels(f, 96) for f in has.cell_sizes] == [0, 8, 16, 22]
    assert [relative_to_pixels(f, 288) for f in has.cell_sizes] == [0, 24, 48, 66]
    assert [relative_to_pixels(f, 192) for f in grid.period_range] == [96, 224]
    assert [relative_to_pixels(f, 96) for f in grid.period_range] == [48, 112]
    assert relative_to_pixels(0.001, 96) == 1  # a non-zero size keeps at least one pixel


def test_cell_sizes_and_periods_scale_with_the_crop_width():
    rng = np.random.default_rng(0)
    for width, cells in [(96, {0, 8, 16, 22}), (192, {0, 16, 32, 44})]:
        drawn = {HideAndSeek().sample_region(rng, width * 4 // 3, width, np.zeros((0, 2)), None)["grid_size"]
                 for _ in range(200)}  # fmt: skip
        assert drawn == cells
    periods = [GridMask().sample_region(rng, 128, 96, np.zeros((0, 2)), None)["period"] for _ in range(2000)]
    assert min(periods) == 48 and max(periods) == 112


def test_has_mask_by_hand_with_a_relative_cell_size():
    has = HideAndSeek(cell_sizes=(0.5,), hide_prob=0.5)
    for height, width, cell in [(6, 4, 2), (12, 8, 4)]:  # cells of 0.5 × width: 2 px, then 4 px
        region = has.sample_region(np.random.default_rng(1), height, width, np.zeros((0, 2)), None)
        hidden = region["hidden_cells"]
        assert region["grid_size"] == cell and hidden.shape == (3, 2)  # the same 3 × 2 cells at both sizes
        expected = np.kron(hidden, np.ones((cell, cell), dtype=bool))
        np.testing.assert_array_equal(has.region_mask(region, height, width).full(), expected)
    out, dropped = HideAndSeek(cell_sizes=(0.5,), hide_prob=1.0).drop(
        np.full((6, 4), 7, np.uint8), np.array([[0.0, 0.0], [3.0, 5.0]]), np.random.default_rng(1)
    )
    assert (out == 0).all() and dropped.tolist() == [True, True]
    region = GridMask(period_range=(0.5, 0.5), ratio=0.5, mode=1).sample_region(
        np.random.default_rng(2), 4, 8, np.zeros((0, 2)), None
    )
    assert (region["period"], region["band"]) == (4, 2)  # d = 0.5 × 8 px, l = ⌊4 · 0.5 + 0.5⌋


@pytest.mark.parametrize(
    "dropper",
    [Cutout(), RandomErasing(p=1.0), HideAndSeek(), GridMask(), GridMask(rotate=45.0)],
    ids=["cutout", "random_erasing", "has", "gridmask", "gridmask_rotated"],
)
def test_same_dropped_share_at_two_crop_sizes(dropper):
    small = dropped_area_share(dropper, *SMALL, draws=1500, seed=0)
    large = dropped_area_share(dropper, *LARGE, draws=1500, seed=0)
    assert small["mean"] == pytest.approx(large["mean"], abs=0.01)
    assert small["std"] == pytest.approx(large["std"], abs=0.01)  # same granularity, not only the same mean


def test_pixel_valued_periods_would_not_keep_the_share():
    # the paper's (96, 224) px applied as pixels on a 96-px-wide crop: periods of 1–2.3 crop widths
    pixels = GridMask(period_range=(96 / 96, 224 / 96))
    small = dropped_area_share(pixels, *SMALL, draws=1500, seed=0)
    large = dropped_area_share(GridMask(), *LARGE, draws=1500, seed=0)
    assert small["std"] > 2 * large["std"]


def test_dropped_area_share_needs_draws():
    with pytest.raises(ValueError, match="draws=0 must be ≥ 1"):
        dropped_area_share(Cutout(), 8, 8, draws=0, seed=0)
