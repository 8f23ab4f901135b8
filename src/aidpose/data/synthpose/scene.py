"""Scene composition: background, clutter, persons, occluders; owner map, visibility and COCO annotations.

Drawing order (back to front): background, clutter (including limb-like distractors; owner 0), then persons
sorted by how low they stand in the image, each followed by the occluders aimed at it. Every object writes
its id into the owner map where it draws, so the owner map says who drew each final pixel:
0 background/clutter, ``k + 1`` person ``k`` (= annotation ``k``), ``OCCLUDER_OWNER_BASE + j`` occluder ``j``.
A labelled keypoint is visible (v=2) iff the pixel under it, ``(round(y), round(x))``, is owned by its own
person, hidden (v=1) otherwise; keypoints outside the image get v=0 and x=y=0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from aidpose.data.synthpose.appearance import (
    TEXTURE_KINDS,
    Materials,
    random_colour,
    sample_outfit,
    single_material,
    texture_field,
)
from aidpose.data.synthpose.body import (
    LABEL,
    Part,
    PersonGeometry,
    Placement,
    person_geometry,
    sample_pose,
    sample_rotation,
    sample_shape,
    sample_yaw,
)
from aidpose.data.synthpose.render import Silhouette, paint, parts_extent, rasterise

OCCLUDER_OWNER_BASE = 1000
SPLIT_CODES = {"train": 0, "val": 1}
MAX_OCCLUDED_FRACTION = 0.6  # an occluder may hide at most this share of its target's in-image keypoints


@dataclass(frozen=True)
class Preset:
    """Scene statistics. Ranges are inclusive; heights are fractions of the image size (standing height)."""

    name: str
    person_counts: tuple[int, ...]
    person_weights: tuple[float, ...]
    height_range: tuple[float, float]
    group_prob: tuple[float, float]  # per image, chance that a person is placed beside an earlier one
    max_iou: float  # box IoU above which a placement is rejected
    occluders: tuple[int, int]
    clutter: tuple[int, int]
    limb_distractors: tuple[int, int]
    crowd_index: bool  # write CrowdPose's crowdIndex into each image entry


PRESETS: dict[str, Preset] = {
    "default": Preset(
        name="default",
        person_counts=(1, 2, 3, 4),
        person_weights=(0.3, 0.3, 0.25, 0.15),
        height_range=(0.32, 1.25),
        group_prob=(0.3, 0.7),
        max_iou=0.45,
        occluders=(0, 3),
        clutter=(3, 8),
        limb_distractors=(1, 4),
        crowd_index=False,
    ),
    "crowd": Preset(
        name="crowd",
        person_counts=(3, 4, 5, 6, 7, 8),
        person_weights=(0.15, 0.2, 0.2, 0.2, 0.15, 0.1),
        height_range=(0.25, 0.75),
        group_prob=(0.0, 1.0),
        max_iou=0.8,
        occluders=(0, 2),
        clutter=(2, 6),
        limb_distractors=(1, 3),
        crowd_index=True,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``default`` or ``crowd``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


class RenderedImage(NamedTuple):
    """One generated image: BGR uint8 pixels, COCO annotations (no ids yet) and the owner map (int16)."""

    image: np.ndarray
    annotations: list[dict]
    owner: np.ndarray


@dataclass
class _Person:
    geometry: PersonGeometry
    materials: Materials
    height: float
    extent: tuple[float, float, float, float]


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image: independent of every other image and of how many are generated."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split: unknown split {split!r}; choose one of {sorted(SPLIT_CODES)}")
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))


def render_sample(
    seed: int, index: int, *, split: str = "train", image_size: int = 256, preset: str = "default"
) -> RenderedImage:
    """Render image ``index`` of ``split`` exactly as :func:`generate_synthpose` writes it (before JPEG)."""
    preset_ = get_preset(preset)
    return render_scene(image_rng(seed, split, index), image_size, preset_)


def render_scene(rng: np.random.Generator, size: int, preset: Preset) -> RenderedImage:
    """Compose one ``size``×``size`` scene from ``rng``."""
    shape = (size, size)
    image = background(rng, size)
    owner = np.zeros(shape, np.int16)
    persons = _place_persons(rng, size, preset)
    mean_height = float(np.mean([p.height for p in persons]))
    for _ in range(rng.integers(preset.clutter[0], preset.clutter[1] + 1)):
        parts, materials = _clutter_shape(rng, size, mean_height)
        _draw(image, None, parts, materials, 0, rng)
    for _ in range(rng.integers(preset.limb_distractors[0], preset.limb_distractors[1] + 1)):
        start = rng.uniform(0, size, 2)
        parts, materials = _limb_distractor(rng, start, mean_height * rng.uniform(0.75, 1.25))
        _draw(image, None, parts, materials, 0, rng)

    # persons lower in the image stand nearer the camera; occluders go right in front of their target
    order = sorted(range(len(persons)), key=lambda k: persons[k].extent[3] + rng.normal(0.0, 0.05 * size))
    occluders: dict[int, list[tuple[list[Part], Materials]]] = {k: [] for k in order}
    for _ in range(rng.integers(preset.occluders[0], preset.occluders[1] + 1)):
        target = int(rng.integers(len(persons)))
        occluder = _occluder_for(rng, persons[target], shape)
        if occluder is not None:
            occluders[target].append(occluder)
    silhouettes: dict[int, Silhouette] = {}
    occluder_id = OCCLUDER_OWNER_BASE
    for k in order:
        person = persons[k]
        silhouettes[k] = _draw(image, owner, list(person.geometry.parts), person.materials, k + 1, rng)
        for parts, materials in occluders[k]:
            _draw(image, owner, parts, materials, occluder_id, rng)
            occluder_id += 1

    image = finish_image(rng, image)
    annotations = []
    for k, person in enumerate(persons):
        keypoints = np.round(person.geometry.keypoints, 2)
        vis = visibility(keypoints, owner, k + 1)
        annotations.append(person_annotation(keypoints, vis, silhouettes[k]))
    return RenderedImage(image, annotations, owner)


def _draw(
    image: np.ndarray,
    owner: np.ndarray | None,
    parts: list[Part],
    materials: Materials,
    owner_id: int,
    rng: np.random.Generator,
) -> Silhouette:
    raster = rasterise(parts, image.shape[:2])
    if raster is None:
        return Silhouette(np.zeros((0, 0), bool), (0, 0))
    canvas, origin = raster
    return paint(image, owner, canvas, origin, materials, owner_id, rng)


# ---------------------------------------------------------------------------------------------
# Visibility and annotations


def in_image(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Whether each keypoint lies within the pixel centres of an image of ``size`` = (width, height)."""
    width, height = size
    x, y = keypoints[:, 0], keypoints[:, 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def visibility(keypoints: np.ndarray, owner: np.ndarray, owner_id: int) -> np.ndarray:
    """COCO v per keypoint: 2 if the pixel under it is owned by ``owner_id``, 1 if by another, 0 outside."""
    inside = in_image(keypoints, (owner.shape[1], owner.shape[0]))
    v = np.zeros(len(keypoints), np.int64)
    cols = np.rint(keypoints[inside, 0]).astype(np.int64)
    rows = np.rint(keypoints[inside, 1]).astype(np.int64)
    v[inside] = np.where(owner[rows, cols] == owner_id, 2, 1)
    return v


def person_annotation(keypoints: np.ndarray, vis: np.ndarray, silhouette: Silhouette) -> dict:
    """COCO annotation (without ``id``/``image_id``) of one person.

    ``area`` is the person's whole silhouette inside the image (occluded parts included); ``bbox`` is the
    smallest integer-aligned box around that silhouette's pixel centres and the labelled keypoints.
    """
    labelled = vis > 0
    kps = np.where(labelled[:, None], keypoints, 0.0)
    ys, xs = np.nonzero(silhouette.mask)
    xs = np.concatenate([xs + silhouette.origin[0], kps[labelled, 0]])
    ys = np.concatenate([ys + silhouette.origin[1], kps[labelled, 1]])
    x0, y0 = float(np.floor(xs.min())), float(np.floor(ys.min()))
    x1, y1 = float(np.ceil(xs.max())), float(np.ceil(ys.max()))
    flat = np.concatenate([kps, vis[:, None]], axis=1).reshape(-1)
    return {
        "keypoints": [round(float(a), 2) if i % 3 < 2 else int(a) for i, a in enumerate(flat)],
        "num_keypoints": int(labelled.sum()),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": float(silhouette.area),
        "iscrowd": 0,
        "category_id": 1,
    }


# ---------------------------------------------------------------------------------------------
# Persons


def _place_persons(rng: np.random.Generator, size: int, preset: Preset) -> list[_Person]:
    count = int(rng.choice(preset.person_counts, p=preset.person_weights))
    lo, hi = preset.height_range
    base = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    group_prob = rng.uniform(*preset.group_prob)
    persons: list[_Person] = []
    for _ in range(count):
        for attempt in range(12):
            height = float(np.clip(base * np.exp(rng.normal(0.0, 0.18)), lo, hi)) * size
            x, y = _person_position(rng, size, height, persons, group_prob)
            place = Placement(x, y, height, sample_yaw(rng), sample_rotation(rng))
            geometry = person_geometry(sample_shape(rng), sample_pose(rng), place)
            extent = parts_extent(geometry.parts)
            if attempt == 11 or all(_iou(extent, p.extent) <= preset.max_iou for p in persons):
                break
        persons.append(_Person(geometry, sample_outfit(rng, height), height, extent))
    return persons


def _person_position(
    rng: np.random.Generator, size: int, height: float, others: list[_Person], group_prob: float
) -> tuple[float, float]:
    """Pelvis position: beside an earlier person (overlapping) or anywhere; the pelvis stays in the image."""
    if others and rng.uniform() < group_prob:
        anchor = others[int(rng.integers(len(others)))]
        ax = 0.5 * (anchor.extent[0] + anchor.extent[2])
        reach = 0.5 * (anchor.height + height)
        x = ax + rng.choice((-1.0, 1.0)) * rng.uniform(0.08, 0.45) * reach
        y = float(anchor.geometry.keypoints[11:13, 1].mean()) + rng.normal(0.0, 0.1 * height)
    else:
        x = rng.uniform(0.08, 0.92) * size
        top, bottom = 0.55 * height, size - 0.4 * height  # head and feet inside the image
        y = rng.uniform(min(top, bottom), max(top, bottom))
    return float(np.clip(x, 0.06 * size, 0.94 * size)), float(np.clip(y, 0.15 * size, 0.94 * size))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# Background, clutter, distractors, occluders


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float32 BGR backdrop: two-colour gradient wall, often a textured floor, low-frequency noise.

    Drawn at half resolution and upsampled (backgrounds carry no fine detail; 4× cheaper).
    """
    n = max(size // 2, 8)
    xs = np.linspace(0.0, 1.0, n, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (xs - 0.5) * np.cos(angle) + (ys - 0.5) * np.sin(angle), 0, 1)[..., None]
    c1 = random_colour(rng, sat=(0.0, 0.6), val=(0.2, 0.9))
    c2 = random_colour(rng, sat=(0.0, 0.6), val=(0.2, 0.9))
    kind = TEXTURE_KINDS[rng.integers(len(TEXTURE_KINDS))]
    wall = texture_field(rng, kind, rng.uniform(0.03, 0.15), rng.uniform(0.03, 0.2) * n, (n, n))
    image = (c1 * (1 - t) + c2 * t) * (1.0 + wall[..., None])
    if rng.uniform() < 0.6:
        horizon = int(rng.uniform(0.3, 0.75) * n)
        floor = random_colour(rng, sat=(0.0, 0.5), val=(0.2, 0.8))
        kind = TEXTURE_KINDS[rng.integers(len(TEXTURE_KINDS))]
        tex = texture_field(rng, kind, rng.uniform(0.05, 0.25), rng.uniform(0.04, 0.15) * n, (n - horizon, n))
        image[horizon:] = floor * (1.0 + tex[..., None])
    noise = texture_field(rng, "noise", rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.3) * n, (n, n))
    image = (image * (1.0 + noise[..., None])).astype(np.float32)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def _textured(rng: np.random.Generator, scale: float) -> Materials:
    kind = TEXTURE_KINDS[rng.integers(len(TEXTURE_KINDS))]
    return single_material(random_colour(rng), (kind, rng.uniform(0.1, 0.35), rng.uniform(0.05, 0.3) * scale))


def _shape_parts(rng: np.random.Generator, kind: str, centre: np.ndarray, scale: float) -> list[Part]:
    """One label-1 shape of roughly ``scale`` px: rect, ellipse, polygon or bar, randomly rotated."""
    angle = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if kind == "rect":
        half = scale * rng.uniform(0.25, 0.6, 2)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        return [Part(1, 0.0, "polygon", corners @ rot.T + centre)]
    if kind == "bar":
        half = np.array([scale * rng.uniform(0.8, 1.6), max(scale * rng.uniform(0.04, 0.12), 1.0)])
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        return [Part(1, 0.0, "polygon", corners @ rot.T + centre)]
    if kind == "ellipse":
        axes = scale * rng.uniform(0.2, 0.55, 2)
        return [Part(1, 0.0, "ellipse", np.array([*centre, *axes, np.degrees(angle)]))]
    if kind == "polygon":
        theta = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
        radius = scale * rng.uniform(0.25, 0.6, len(theta))
        pts = np.stack([np.cos(theta) * radius, np.sin(theta) * radius], axis=1)
        return [Part(1, 0.0, "polygon", pts + centre)]
    raise ValueError(f"unknown shape kind {kind!r}")


SHAPE_KINDS = ("rect", "bar", "ellipse", "polygon")


def _clutter_shape(rng: np.random.Generator, size: int, person_height: float) -> tuple[list[Part], Materials]:
    kind = SHAPE_KINDS[rng.integers(len(SHAPE_KINDS))]
    scale = rng.uniform(0.15, 0.6) * max(person_height, 0.3 * size)
    return _shape_parts(rng, kind, rng.uniform(0, size, 2), scale), _textured(rng, scale)


def _limb_distractor(
    rng: np.random.Generator, start: np.ndarray, person_height: float
) -> tuple[list[Part], Materials]:
    """A detached arm or leg: two or three tapered segments with a hand, coloured like clothes and skin."""
    leg = rng.uniform() < 0.4
    radius = person_height * (0.042 if leg else 0.03) * rng.uniform(0.8, 1.3)
    lengths = person_height * (np.array([0.245, 0.245]) if leg else np.array([0.17, 0.15]))
    direction = rng.uniform(0, 2 * np.pi)
    points = [np.asarray(start, float)]
    for length in lengths:
        points.append(points[-1] + length * np.array([np.cos(direction), np.sin(direction)]))
        direction += np.radians(rng.uniform(-120, 120))
    parts = [
        Part(1, 0.0, "capsule", np.array([*points[0], *points[1], radius * 1.1, radius * 0.9])),
        Part(2, 0.0, "capsule", np.array([*points[1], *points[2], radius * 0.85, radius * 0.65])),
    ]
    tip = points[2] + (points[2] - points[1]) / np.linalg.norm(points[2] - points[1]) * radius * 1.5
    parts.append(Part(3, 0.0, "capsule", np.array([*points[2], *tip, radius * 0.7, radius * 0.8])))
    outfit = sample_outfit(rng, person_height)
    colours = np.zeros((4, 3), np.float32)
    names = ("thigh_r", "shank_r", "foot_r") if leg else ("upper_arm_r", "forearm_r", "hand_r")
    for i, name in enumerate(names, start=1):
        colours[i] = outfit.colours[LABEL[name]]
    texture_index = np.array([0, *(outfit.texture_index[LABEL[n]] for n in names)])
    return parts, Materials(colours, texture_index, outfit.texture_specs)


OCCLUDER_KINDS = ("rect", "bar", "ellipse", "polygon", "counter", "limb")
OCCLUDER_PROBS = (0.22, 0.16, 0.17, 0.17, 0.16, 0.12)


def _occluder_for(
    rng: np.random.Generator, person: _Person, shape: tuple[int, int]
) -> tuple[list[Part], Materials] | None:
    """An occluder over part of ``person``, hiding at most ``MAX_OCCLUDED_FRACTION`` of its keypoints."""
    kps = person.geometry.keypoints
    inside = in_image(kps, (shape[1], shape[0]))
    if not inside.any():
        return None
    h = person.height
    kind = OCCLUDER_KINDS[rng.choice(len(OCCLUDER_KINDS), p=OCCLUDER_PROBS)]
    anchor = kps[rng.choice(np.flatnonzero(inside))] + rng.normal(0.0, 0.08 * h, 2)
    scale = rng.uniform(0.25, 0.6) * h
    for _ in range(3):
        if kind == "counter":  # a table or wall hiding the lower body from a random height downwards
            hip_y, knee_y = kps[11:13, 1].mean(), kps[13:15, 1].mean()
            top = rng.uniform(min(hip_y, knee_y) - 0.05 * h, max(hip_y, knee_y) + 0.05 * h)
            cx = 0.5 * (person.extent[0] + person.extent[2]) + rng.normal(0.0, 0.2 * h)
            half_w = rng.uniform(0.4, 0.9) * h
            corners = np.array(
                [[cx - half_w, top], [cx + half_w, top], [cx + half_w, top + h], [cx - half_w, top + h]]
            )
            parts, materials = [Part(1, 0.0, "polygon", corners)], _textured(rng, h)
        elif kind == "limb":
            parts, materials = _limb_distractor(rng, anchor, h * rng.uniform(0.8, 1.2))
        else:
            parts, materials = _shape_parts(rng, kind, anchor, scale), _textured(rng, scale)
        raster = rasterise(parts, shape)
        if raster is not None:
            canvas, (x0, y0) = raster
            cols = np.rint(kps[inside, 0]).astype(int) - x0
            rows = np.rint(kps[inside, 1]).astype(int) - y0
            ok = (cols >= 0) & (cols < canvas.shape[1]) & (rows >= 0) & (rows < canvas.shape[0])
            hidden = np.count_nonzero(canvas[rows[ok], cols[ok]])
            if 0 < hidden <= MAX_OCCLUDED_FRACTION * inside.sum():
                return parts, materials
        scale *= 0.7
        anchor = kps[rng.choice(np.flatnonzero(inside))] + rng.normal(0.0, 0.08 * h, 2)
    return None


def finish_image(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Camera effects on the float image: slight blur, brightness/contrast change and sensor noise → uint8."""
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.9))
    gain, offset = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)
    amplitude = rng.uniform(2.0, 9.0)  # uniform noise of standard deviation amplitude / sqrt(3)
    noise = rng.random(image.shape, dtype=np.float32)
    return cv2.addWeighted(image, gain, noise, 2 * amplitude, offset - amplitude, dtype=cv2.CV_8U)
