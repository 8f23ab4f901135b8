"""The AID droppers as albumentations transforms and through aidpose's fast ``drop()`` path."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from aidpose.aid import Cutout, GridMask, HideAndSeek, InformationDropper, RandomErasing

HEIGHT, WIDTH = 64, 48


def all_droppers(**kwargs) -> list[InformationDropper]:
    """One of each dropper, applied on every call unless ``p`` is given, with periods for small images."""
    kwargs = {"p": 1.0, **kwargs}
    return [
        Cutout(**kwargs),
        Cutout(center="keypoint", shape="rectangle", num_holes_range=(1, 3), **kwargs),
        RandomErasing(**kwargs),
        HideAndSeek(cell_sizes=(4 / WIDTH, 8 / WIDTH, 11 / WIDTH), **kwargs),
        GridMask(period_range=(8 / WIDTH, 24 / WIDTH), rotate=30.0, **kwargs),
        GridMask(period_range=(8 / WIDTH, 24 / WIDTH), mode=0, **kwargs),
    ]


def ids(droppers: list[InformationDropper]) -> list[str]:
    return [f"{type(d).__name__}{i}" for i, d in enumerate(droppers)]


def compose(dropper: InformationDropper, seed: int = 0, **kwargs) -> A.Compose:
    return A.Compose(
        [dropper],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False, **kwargs),
        seed=seed,
        save_applied_params=True,
    )


def make_keypoints(rng: np.random.Generator, count: int = 40) -> np.ndarray:
    """Keypoints over and slightly beyond the image, in float32 as albumentations keeps them."""
    return rng.uniform((-4, -4), (WIDTH + 4, HEIGHT + 4), size=(count, 2)).astype(np.float32)


def pixel_dropped(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Direct pixel check on a constant-200 image filled with 0: was the pixel under each keypoint zeroed?"""
    cols, rows = np.floor(keypoints + 0.5).astype(int).T
    inside = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
    out = np.zeros(len(keypoints), dtype=bool)
    out[inside] = image[rows[inside], cols[inside]].reshape(inside.sum(), -1)[:, 0] == 0
    return out


DROPPERS = all_droppers(fill=0)


@pytest.mark.parametrize("dropper", DROPPERS, ids=ids(DROPPERS))
def test_dropped_flags_equal_a_direct_pixel_check(dropper):
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(20):
        keypoints = make_keypoints(rng)
        image, dropped = dropper.drop(np.full((HEIGHT, WIDTH, 3), 200, np.uint8), keypoints, rng)
        np.testing.assert_array_equal(dropped, pixel_dropped(image, keypoints))
        assert set(np.unique(image)) <= {0, 200}
        hits += dropped.sum()

        out = compose(dropper, seed=int(rng.integers(1000)))(
            image=np.full((HEIGHT, WIDTH, 3), 200, np.uint8), keypoints=keypoints
        )
        params = out["applied_transforms"][0][1]
        np.testing.assert_array_equal(params["dropped_keypoints"], pixel_dropped(out["image"], keypoints))
        np.testing.assert_array_equal(params["drop_mask"], out["image"][..., 0] == 0)
    assert hits > 0


@pytest.mark.parametrize("dropper", DROPPERS, ids=ids(DROPPERS))
def test_keypoints_and_other_targets_pass_through_compose_unchanged(dropper):
    rng = np.random.default_rng(1)
    keypoints = make_keypoints(rng)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (HEIGHT, WIDTH), dtype=np.uint8)
    bboxes = np.array([[2.0, 3.0, 20.0, 30.0]])
    pipeline = A.Compose(
        [dropper],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        seed=3,
    )
    out = pipeline(image=image, mask=mask, keypoints=keypoints, bboxes=bboxes, labels=[1])
    np.testing.assert_array_equal(out["keypoints"], keypoints)
    np.testing.assert_array_equal(out["mask"], mask)
    np.testing.assert_allclose(out["bboxes"], bboxes)
    assert out["image"].shape == image.shape and not np.array_equal(out["image"], image)
    assert image.max() > 0 and np.shares_memory(out["image"], image) is False


@pytest.mark.parametrize("dropper", DROPPERS, ids=ids(DROPPERS))
def test_serialisation_round_trip(dropper, tmp_path):
    restored = A.from_dict(A.to_dict(dropper))
    assert type(restored) is type(dropper)
    assert A.to_dict(restored) == A.to_dict(dropper)
    A.save(compose(dropper), tmp_path / "pipeline.json", data_format="json")
    loaded = A.load(tmp_path / "pipeline.json", data_format="json")
    assert A.to_dict(loaded.transforms[0]) == A.to_dict(dropper)


def test_serialisation_keeps_non_default_parameters():
    dropper = Cutout(
        num_holes_range=(2, 4),
        size_range=(0.1, 0.2),
        shape="rectangle",
        center="keypoint",
        center_jitter=0.05,
        visibility_field="vis",
        fill=(1, 2, 3),
        p=0.7,
    )
    restored = A.from_dict(A.to_dict(dropper))
    for name in (
        "num_holes_range",
        "size_range",
        "shape",
        "center",
        "center_jitter",
        "visibility_field",
        "p",
    ):
        assert getattr(restored, name) == getattr(dropper, name)
    assert restored.fill == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("dropper", DROPPERS, ids=ids(DROPPERS))
def test_deterministic_under_compose_seed_and_drop_rng(dropper):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    keypoints = make_keypoints(rng)
    runs = [compose(dropper, seed=11)(image=image, keypoints=keypoints)["image"] for _ in range(2)]
    np.testing.assert_array_equal(*runs)
    other = [compose(dropper, seed=s)(image=image, keypoints=keypoints)["image"] for s in range(12, 16)]
    assert any(not np.array_equal(runs[0], o) for o in other)
    drops = [dropper.drop(image.copy(), keypoints, np.random.default_rng(5)) for _ in range(2)]
    np.testing.assert_array_equal(drops[0][0], drops[1][0])
    np.testing.assert_array_equal(drops[0][1], drops[1][1])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(HEIGHT, WIDTH), (HEIGHT, WIDTH, 1), (HEIGHT, WIDTH, 3)])
@pytest.mark.parametrize("fill", [0, "mean", "random"])
def test_dtype_and_shape_are_kept(dtype, shape, fill):
    rng = np.random.default_rng(3)
    scale = 255 if dtype == np.uint8 else 1.0
    keypoints = make_keypoints(rng)
    for dropper in all_droppers(fill=fill):
        image = (rng.random(shape) * scale).astype(dtype)
        out = compose(dropper)(image=image, keypoints=keypoints)["image"]
        assert out.dtype == dtype and out.shape == shape
        dropped_image, dropped = dropper.drop(image.copy(), keypoints, rng)
        assert (
            dropped_image.dtype == dtype
            and dropped_image.shape == shape
            and dropped.shape == (len(keypoints),)
        )
        assert dropped_image.min() >= 0 and dropped_image.max() <= scale


def test_fill_values():
    rng = np.random.default_rng(4)
    whole = {"num_holes_range": (1, 1), "size_range": (5.0, 5.0)}  # a hole covering the whole image
    image, _ = Cutout(fill="mean", **whole).drop(np.zeros((5, 4, 3), np.uint8), np.zeros((0, 2)), rng)
    np.testing.assert_array_equal(image[2, 2], [124, 116, 104])  # ImageNet mean, RGB, 0–255
    image, _ = Cutout(fill="mean", **whole).drop(np.zeros((5, 4), np.float32), np.zeros((0, 2)), rng)
    np.testing.assert_allclose(image, np.mean([0.485, 0.456, 0.406]))
    image, _ = Cutout(fill=(10, 20, 30), **whole).drop(np.zeros((5, 4, 3), np.float32), np.zeros((0, 2)), rng)
    np.testing.assert_array_equal(image[4, 3], [10, 20, 30])
    image, _ = Cutout(fill=300, **whole).drop(np.zeros((5, 4, 3), np.uint8), np.zeros((0, 2)), rng)
    assert (image == 255).all()
    image, _ = Cutout(fill="random", **whole).drop(np.zeros((50, 40, 3), np.uint8), np.zeros((0, 2)), rng)
    assert len(np.unique(image)) > 200
    with pytest.raises(ValueError, match="2 values for a 3-channel image"):
        Cutout(fill=(1, 2), **whole).drop(np.zeros((5, 4, 3), np.uint8), np.zeros((0, 2)), rng)


def test_drop_modifies_contiguous_images_in_place_and_copies_others():
    rng = np.random.default_rng(5)
    cutout = Cutout(size_range=(0.5, 0.5))
    for dtype in (np.uint8, np.float32):
        image = np.full((HEIGHT, WIDTH, 3), 200, dtype)
        out, _ = cutout.drop(image, np.zeros((0, 2)), rng)
        assert out is image and (image == 0).any()
        view = np.full((HEIGHT, 2 * WIDTH, 3), 200, dtype)[:, ::2]
        out, _ = cutout.drop(view, np.zeros((0, 2)), rng)
        assert (out == 0).any() and (view == 200).all()


@pytest.mark.parametrize("size", [(3, 5), (1, 1), (5, 3)])
def test_tiny_images(size):
    rng = np.random.default_rng(6)
    image = np.full((*size, 3), 200, np.uint8)
    keypoints = np.array([[0.0, 0.0], [size[1] - 1.0, size[0] - 1.0]])
    for dropper in [*all_droppers(fill=0), GridMask(fill=0), HideAndSeek()]:
        out, dropped = dropper.drop(image.copy(), keypoints, rng)
        np.testing.assert_array_equal(dropped, pixel_dropped(out, keypoints))
        assert out.shape == image.shape
        assert compose(dropper)(image=image, keypoints=keypoints)["image"].shape == image.shape


@pytest.mark.parametrize("dropper", all_droppers(p=0.0), ids=ids(all_droppers()))
def test_p_zero_is_the_identity(dropper):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    keypoints = make_keypoints(rng)
    out, dropped = dropper.drop(image.copy(), keypoints, rng)
    np.testing.assert_array_equal(out, image)
    assert not dropped.any()
    result = compose(dropper)(image=image, keypoints=keypoints)
    np.testing.assert_array_equal(result["image"], image)
    assert result["applied_transforms"] == []


def test_probability_p_is_respected_by_both_paths():
    rng = np.random.default_rng(8)
    image = np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
    erasing = RandomErasing(area_range=(0.1, 0.2))  # p = 0.5, as Zhong et al.
    applied = np.mean(
        [(erasing.drop(image.copy(), np.zeros((0, 2)), rng)[0] != 200).any() for _ in range(2000)]
    )
    assert applied == pytest.approx(0.5, abs=0.04)
    pipeline = compose(RandomErasing(area_range=(0.1, 0.2), fill=0), seed=9)
    applied = np.mean([len(pipeline(image=image, keypoints=[])["applied_transforms"]) for _ in range(1000)])
    assert applied == pytest.approx(0.5, abs=0.05)


def test_hide_and_seek_hides_the_bottom_of_a_portrait_crop():
    rng = np.random.default_rng(9)
    has = HideAndSeek(fill=0)  # official grid sizes on a 256×192 crop
    bottom = []
    for _ in range(400):
        image, _ = has.drop(np.full((256, 192, 3), 200, np.uint8), np.zeros((0, 2)), rng)
        bottom.append((image[192:] == 0).all(axis=-1).mean())
    assert np.mean(bottom) == pytest.approx(0.75 * 0.5, abs=0.03)  # g = 0 a quarter of the time
    image, _ = HideAndSeek(cell_sizes=(1 / 6,), hide_prob=1.0).drop(
        np.full((256, 192, 3), 9, np.uint8), [], rng
    )
    assert (image == 0).all()


def test_keypoint_targeted_cutout_uses_visibility_in_both_paths():
    keypoints = np.array([[10.0, 10.0], [30.0, 50.0], [40.0, 5.0]])
    visibility = np.array([0, 2, 0])
    cutout = Cutout(center="keypoint", center_jitter=0.0, visibility_field="visibility", fill=0)
    rng = np.random.default_rng(10)
    image, dropped = cutout.drop(
        np.full((HEIGHT, WIDTH, 3), 200, np.uint8), keypoints, rng, visibility=visibility
    )
    assert dropped[1] and image[50, 30].tolist() == [0, 0, 0]
    pipeline = compose(cutout, label_fields=["visibility"])
    for seed in range(5):
        pipeline.set_random_seed(seed)
        out = pipeline(
            image=np.zeros((HEIGHT, WIDTH, 3), np.uint8), keypoints=keypoints, visibility=visibility
        )
        holes = out["applied_transforms"][0][1]["holes"]
        np.testing.assert_array_equal(holes[:, :2], [[30.0, 50.0]])
        np.testing.assert_array_equal(out["visibility"], visibility)
    unlabelled = compose(cutout)
    with pytest.raises(ValueError, match=r"visibility_field='visibility'\) needs it among the label fields"):
        unlabelled(image=np.zeros((HEIGHT, WIDTH, 3), np.uint8), keypoints=keypoints)


def test_keypoint_targeted_cutout_without_candidates_falls_back_to_uniform():
    rng = np.random.default_rng(11)
    cutout = Cutout(center="keypoint")
    keypoints = np.array([[-50.0, 10.0], [np.nan, np.nan]])
    image, dropped = cutout.drop(np.full((HEIGHT, WIDTH, 3), 200, np.uint8), keypoints, rng)
    assert (image == 0).any() and not dropped.any()
    image, dropped = cutout.drop(np.full((HEIGHT, WIDTH, 3), 200, np.uint8), np.zeros((0, 2)), rng)
    assert (image == 0).any() and dropped.shape == (0,)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Cutout(p=1.5), r"p=1.5 must be a probability"),
        (lambda: Cutout(size_range=(0.4, 0.2)), r"size_range=\(0.4, 0.2\) must satisfy"),
        (lambda: Cutout(shape="circle"), r"shape='circle' is not one of"),
        (lambda: Cutout(fill="median"), r"fill='median' is not supported"),
        (lambda: RandomErasing(area_range=(0.1, 1.5)), r"area_range=\(0.1, 1.5\) must satisfy"),
        (
            lambda: HideAndSeek(cell_sizes=(-1, 0.1)),
            r"cell_sizes=\(-1, 0.1\) must be a non-empty list of fractions",
        ),
        (lambda: HideAndSeek(cell_sizes=(0, 16, 32)), r"fractions of the crop width .* e.g. 16 px → 0.0833"),
        (lambda: GridMask(period_range=(96, 224)), r"period_range=\(96, 224\) must satisfy"),
        (lambda: GridMask(ratio=1.0), r"ratio=1.0 must be in \(0, 1\)"),
        (lambda: GridMask(mode=2), r"mode=2 is not one of"),
    ],
)
def test_bad_options_raise_clear_errors(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(12)
    with pytest.raises(ValueError, match="uint8 or float32 images, got float64"):
        Cutout().drop(np.zeros((8, 8, 3)), np.zeros((0, 2)), rng)
    with pytest.raises(ValueError, match="K×2 array of xy coordinates"):
        Cutout().drop(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 1)), rng)
