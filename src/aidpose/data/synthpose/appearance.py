"""Colours and textures: per-person outfits (a material per body part) and procedural texture fields."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from aidpose.data.synthpose.body import LABEL, LEFT_PARTS, PART_LABELS

# The body's left side is drawn this much darker: a chiral cue, valid as long as training does not flip
# images (a horizontal flip with left/right label swap turns it into noise). The flip-consistent cues
# are the facing ones: face, shirt placket, toes and the direction knees and elbows bend.
LEFT_SHADE = 0.8

# texture field index of a material
TEX_NONE, TEX_CLOTH_TOP, TEX_CLOTH_BOTTOM, TEX_SKIN = 0, 1, 2, 3
TEXTURE_KINDS = ("plain", "stripes", "checker", "noise")

SKIN_TONES_RGB = np.array(
    [[255, 224, 196], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [92, 58, 35]], float
)
HAIR_RGB = np.array(
    [[25, 20, 18], [65, 42, 28], [110, 75, 45], [200, 170, 110], [150, 150, 150], [140, 60, 30]], float
)
PANTS_RGB = np.array([[40, 60, 110], [30, 30, 35], [190, 170, 130], [110, 110, 115], [70, 80, 50]], float)


@dataclass(frozen=True)
class Materials:
    """Colour (BGR, float) and texture field index for each label of a label canvas (row 0 unused)."""

    colours: np.ndarray  # (L, 3) float32
    texture_index: np.ndarray  # (L,) int
    texture_specs: tuple[tuple[str, float, float], ...]  # (kind, amplitude, period px) per field, index 1..


def random_colour(
    rng: np.random.Generator, sat: tuple[float, float] = (0.15, 0.9), val=(0.2, 0.95)
) -> np.ndarray:
    """A random BGR colour (0–255 float) from HSV ranges."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _jitter(rgb: np.ndarray, rng: np.random.Generator, sd: float = 10.0) -> np.ndarray:
    """RGB palette entry → BGR with a little per-channel noise."""
    return np.clip(rgb[::-1] + rng.normal(0.0, sd, 3), 0, 255).astype(np.float32)


def _texture_spec(rng: np.random.Generator, kinds: tuple[str, ...], probs, height_px: float):
    kind = kinds[rng.choice(len(kinds), p=probs)]
    return (kind, float(rng.uniform(0.12, 0.35)), float(height_px * rng.uniform(0.03, 0.1)))


def sample_outfit(rng: np.random.Generator, height_px: float) -> Materials:
    """Skin, hair, shirt (with or without sleeves), trousers or shorts, shoes; textured cloth."""
    n = len(PART_LABELS) + 1
    colours = np.zeros((n, 3), np.float32)
    tex = np.zeros(n, np.int64)
    skin = _jitter(SKIN_TONES_RGB[rng.integers(len(SKIN_TONES_RGB))], rng)
    r = rng.uniform()
    hair = (
        _jitter(HAIR_RGB[rng.integers(len(HAIR_RGB))], rng)
        if r < 0.8
        else (
            skin * 0.85 if r < 0.88 else random_colour(rng)  # bald or a hat
        )
    )
    shirt = random_colour(rng)
    pants = (
        _jitter(PANTS_RGB[rng.integers(len(PANTS_RGB))], rng, 15)
        if rng.uniform() < 0.6
        else random_colour(rng)
    )
    shoes = random_colour(rng, sat=(0.0, 0.5), val=(0.05, 0.5))
    long_sleeves, shorts = rng.uniform() < 0.5, rng.uniform() < 0.2

    def put(names: tuple[str, ...], colour: np.ndarray, field: int) -> None:
        for name in names:
            colours[LABEL[name]] = colour
            tex[LABEL[name]] = field

    put(("torso_l", "torso_r", "upper_arm_l", "upper_arm_r"), shirt, TEX_CLOTH_TOP)
    put(("forearm_l", "forearm_r"), *((shirt, TEX_CLOTH_TOP) if long_sleeves else (skin, TEX_SKIN)))
    put(("thigh_l", "thigh_r"), pants, TEX_CLOTH_BOTTOM)
    put(("shank_l", "shank_r"), *((skin, TEX_SKIN) if shorts else (pants, TEX_CLOTH_BOTTOM)))
    put(("hand_l", "hand_r", "neck", "face", "ear_l", "ear_r"), skin, TEX_SKIN)
    put(("foot_l", "foot_r"), shoes, TEX_NONE)
    put(("hair",), hair, TEX_SKIN)
    put(("eye",), np.array([45, 35, 35], np.float32), TEX_NONE)
    put(("nose",), skin * 0.72, TEX_NONE)
    put(("mouth",), np.array([70, 60, 150], np.float32), TEX_NONE)
    placket = shirt * 0.45 if shirt.mean() > 90 else np.minimum(shirt * 1.8 + 60, 255)
    put(("placket",), placket.astype(np.float32), TEX_NONE)
    for name in LEFT_PARTS:
        colours[LABEL[name]] *= LEFT_SHADE
    specs = (
        _texture_spec(rng, TEXTURE_KINDS, (0.35, 0.25, 0.15, 0.25), height_px),
        _texture_spec(rng, ("plain", "noise", "stripes"), (0.5, 0.3, 0.2), height_px),
        ("noise", 0.06, height_px * 0.05),
    )
    return Materials(colours, tex, specs)


def single_material(colour: np.ndarray, spec: tuple[str, float, float]) -> Materials:
    """Materials of a one-label canvas (clutter, occluders): label 1 gets ``colour`` and texture ``spec``."""
    colours = np.zeros((2, 3), np.float32)
    colours[1] = colour
    return Materials(colours, np.array([0, 1]), (spec,))


def texture_field(
    rng: np.random.Generator, kind: str, amplitude: float, period: float, shape: tuple[int, int]
):
    """A multiplicative texture (h×w float32 around 0, scaled by ``amplitude``) of the given kind."""
    h, w = shape
    if kind == "plain" or amplitude == 0.0:
        return np.zeros(shape, np.float32)
    period = max(period, 2.0)
    if kind == "noise":
        gh, gw = int(h / period) + 2, int(w / period) + 2
        grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
        big = cv2.resize(grid, (int(gw * period), int(gh * period)), interpolation=cv2.INTER_LINEAR)
        return amplitude * big[:h, :w]
    angle = rng.uniform(0.0, np.pi)
    phase = rng.uniform(0.0, 1.0)
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    c, s = np.float32(np.cos(angle) / period), np.float32(np.sin(angle) / period)
    wave = _square_wave(xs * c + ys * s + np.float32(phase))
    if kind == "checker":
        wave = wave * _square_wave(ys * c - xs * s + np.float32(phase))
    elif kind != "stripes":
        raise ValueError(f"unknown texture kind {kind!r}; choose one of {TEXTURE_KINDS}")
    return np.float32(amplitude) * wave


def _square_wave(u: np.ndarray) -> np.ndarray:
    """+1 on the first half of each unit period of ``u``, -1 on the second (float32)."""
    return np.where(u - np.floor(u) < 0.5, np.float32(1.0), np.float32(-1.0))
