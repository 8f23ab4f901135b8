"""Articulated 3-D stick body with COCO's 17 keypoints, sampled poses and an orthographic camera.

The body lives in a body frame (units of standing height, origin at the pelvis): ``x`` points to the
body's LEFT, ``y`` DOWN and ``z`` FORWARD (where the person faces). A yaw about ``y`` turns the body
towards the camera (yaw 0: facing the camera, so the body's left appears on the image's right; yaw 180°:
seen from behind). Orthographic projection keeps ``(x, y)``; camera ``z`` (towards the viewer) orders the
drawing. An in-plane rotation, a scale (pixel height) and a translation place the person in the image.

Everything here is geometry: :func:`person_geometry` returns keypoints and drawable parts, no pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aidpose.data.keypoints import COCO

KP = {name: i for i, name in enumerate(COCO.keypoint_names)}

# Joint-angle limits in degrees (min, max). Arms/legs: abduction (sideways, outwards positive),
# flexion (forwards positive), humeral/leg rotation of the elbow/knee hinge, elbow/knee bend.
LIMITS: dict[str, tuple[float, float]] = {
    "arm_abduction": (-20.0, 175.0),
    "arm_flexion": (-60.0, 180.0),
    "arm_rotation": (-90.0, 90.0),
    "elbow": (0.0, 150.0),
    "leg_abduction": (-15.0, 60.0),
    "leg_flexion": (-40.0, 125.0),
    "leg_rotation": (-20.0, 20.0),
    "knee": (0.0, 150.0),
    "torso_bend": (-15.0, 70.0),
    "torso_roll": (-25.0, 25.0),
    "torso_twist": (-35.0, 35.0),
    "head_yaw": (-50.0, 50.0),
    "head_pitch": (-30.0, 35.0),
    "head_roll": (-25.0, 25.0),
}

# Part labels of a person's label canvas (0 = not this person). LEFT_PARTS are the body's left side.
PART_LABELS = (
    "torso_l", "torso_r", "upper_arm_l", "upper_arm_r", "forearm_l", "forearm_r", "hand_l", "hand_r",
    "thigh_l", "thigh_r", "shank_l", "shank_r", "foot_l", "foot_r", "neck", "hair", "face", "eye",
    "nose", "mouth", "ear_l", "ear_r", "placket",
)  # fmt: skip
LABEL = {name: i + 1 for i, name in enumerate(PART_LABELS)}
LEFT_PARTS = tuple(name for name in PART_LABELS if name.endswith("_l"))


@dataclass(frozen=True)
class BodyShape:
    """Per-person proportions in units of standing height (head top to ankles)."""

    torso: float  # hip-joint line to shoulder line
    shoulder_half: float
    hip_half: float
    neck: float
    head_radius: float
    upper_arm: float
    forearm: float
    thigh: float
    shank: float
    foot: float
    arm_radius: float  # upper arm; forearm is 0.8×
    leg_radius: float  # thigh; shank is 0.75×
    torso_depth: float  # half depth of the chest


@dataclass(frozen=True)
class Pose:
    """Joint angles in degrees (see ``LIMITS``); per-side values are (left, right)."""

    arm_abduction: tuple[float, float]
    arm_flexion: tuple[float, float]
    arm_rotation: tuple[float, float]
    elbow: tuple[float, float]
    leg_abduction: tuple[float, float]
    leg_flexion: tuple[float, float]
    leg_rotation: tuple[float, float]
    knee: tuple[float, float]
    torso_bend: float
    torso_roll: float
    torso_twist: float
    head_yaw: float
    head_pitch: float
    head_roll: float


@dataclass(frozen=True)
class Placement:
    """Where the body goes: pelvis position, standing height (px), facing yaw, in-plane rotation (deg)."""

    x: float
    y: float
    height: float
    yaw: float
    rotation: float


@dataclass(frozen=True)
class Part:
    """One drawable primitive in image coordinates.

    ``kind`` is "capsule" (``x1, y1, x2, y2, r1, r2``), "polygon" (``N×2`` points), "circle"
    (``cx, cy, r``) or "ellipse" (``cx, cy, semi_axis_a, semi_axis_b, angle_deg``). Parts are drawn in
    increasing ``depth`` (camera z, larger is nearer).
    """

    label: int
    depth: float
    kind: str
    data: np.ndarray


@dataclass(frozen=True)
class PersonGeometry:
    """Projected keypoints (17×2, image px) and the parts to draw, sorted back to front."""

    keypoints: np.ndarray
    parts: tuple[Part, ...]


# ---------------------------------------------------------------------------------------------
# Sampling


def sample_shape(rng: np.random.Generator) -> BodyShape:
    """Plausible adult proportions with independent per-bone variation (±~6%) and build."""

    def vary(value: float, sd: float = 0.06) -> float:
        return value * float(np.clip(rng.normal(1.0, sd), 1.0 - 2.5 * sd, 1.0 + 2.5 * sd))

    build = float(rng.uniform(0.8, 1.3))  # limb thickness
    return BodyShape(
        torso=vary(0.30),
        shoulder_half=vary(0.115, 0.08),
        hip_half=vary(0.08, 0.08),
        neck=vary(0.05),
        head_radius=vary(0.068, 0.05),
        upper_arm=vary(0.17),
        forearm=vary(0.15),
        thigh=vary(0.245),
        shank=vary(0.245),
        foot=vary(0.10),
        arm_radius=0.03 * build,
        leg_radius=0.042 * build,
        torso_depth=vary(0.065, 0.1) * build**0.5,
    )


def clip_pose(values: dict[str, float | tuple[float, float]]) -> Pose:
    """Clip every angle to its joint limit (``LIMITS``) and build a :class:`Pose`."""
    clipped: dict[str, float | tuple[float, float]] = {}
    for name, value in values.items():
        lo, hi = LIMITS[name]
        if isinstance(value, tuple):
            clipped[name] = (float(np.clip(value[0], lo, hi)), float(np.clip(value[1], lo, hi)))
        else:
            clipped[name] = float(np.clip(value, lo, hi))
    return Pose(**clipped)


POSE_MODES = ("stand", "walk", "run", "gesture", "reach", "sit", "free")
POSE_MODE_PROBS = (0.22, 0.2, 0.1, 0.16, 0.1, 0.1, 0.12)


def sample_pose(rng: np.random.Generator) -> Pose:
    """A pose from a mixture of everyday modes (standing, walking, gesturing, sitting...), within limits."""
    mode = POSE_MODES[rng.choice(len(POSE_MODES), p=POSE_MODE_PROBS)]
    u, n = rng.uniform, rng.normal

    def pair(f) -> tuple[float, float]:
        return (float(f()), float(f()))

    v: dict[str, float | tuple[float, float]] = {
        "arm_abduction": pair(lambda: u(3, 25)),
        "arm_flexion": pair(lambda: n(0, 12)),
        "arm_rotation": pair(lambda: n(0, 25)),
        "elbow": pair(lambda: u(0, 35)),
        "leg_abduction": pair(lambda: u(0, 12)),
        "leg_flexion": pair(lambda: n(0, 6)),
        "leg_rotation": pair(lambda: n(0, 6)),
        "knee": pair(lambda: u(0, 12)),
        "torso_bend": n(3, 5),
        "torso_roll": n(0, 5),
        "torso_twist": n(0, 8),
        "head_yaw": n(0, 18),
        "head_pitch": n(0, 10),
        "head_roll": n(0, 7),
    }
    if mode in ("walk", "run"):
        stride = 28.0 if mode == "walk" else 50.0
        phase = u(-1, 1)
        v["leg_flexion"] = (stride * phase + n(0, 4), -stride * phase + n(0, 4))
        v["arm_flexion"] = (-0.9 * stride * phase + n(0, 6), 0.9 * stride * phase + n(0, 6))
        back = 0 if phase < 0 else 1  # the leg swinging backwards bends more
        knees = [u(5, 25), u(5, 25)] if mode == "walk" else [u(20, 60), u(20, 60)]
        knees[back] += u(10, 30) if mode == "walk" else u(30, 70)
        v["knee"] = (knees[0], knees[1])
        if mode == "run":
            v["elbow"] = pair(lambda: u(70, 115))
            v["torso_bend"] = u(8, 25)
    elif mode == "gesture":
        abd, flex, elbow = [], [], []
        for _ in range(2):
            if u() < 0.65:
                abd.append(u(50, 175))
                flex.append(u(-10, 70))
                elbow.append(u(0, 130))
            else:
                abd.append(u(3, 30))
                flex.append(n(0, 15))
                elbow.append(u(0, 60))
        v["arm_abduction"], v["arm_flexion"], v["elbow"] = tuple(abd), tuple(flex), tuple(elbow)
        v["arm_rotation"] = pair(lambda: n(0, 40))
    elif mode == "reach":
        side = int(rng.integers(2))
        flex = [n(5, 15), n(5, 15)]
        elbow = [u(0, 40), u(0, 40)]
        flex[side] = u(40, 120)
        elbow[side] = u(0, 90)
        if u() < 0.4:
            flex[1 - side] = u(40, 120)
            elbow[1 - side] = u(0, 90)
        v["arm_flexion"], v["elbow"] = (flex[0], flex[1]), (elbow[0], elbow[1])
        v["arm_abduction"] = pair(lambda: u(0, 30))
        v["torso_bend"] = u(0, 30)
    elif mode == "sit":
        v["leg_flexion"] = pair(lambda: u(60, 115))
        v["knee"] = pair(lambda: u(60, 140))
        v["leg_abduction"] = pair(lambda: u(0, 25))
        v["arm_flexion"] = pair(lambda: u(10, 60))
        v["elbow"] = pair(lambda: u(20, 100))
        v["torso_bend"] = u(-10, 35)
    elif mode == "free":
        for name in ("arm_abduction", "arm_flexion", "arm_rotation", "elbow", "leg_abduction", "leg_flexion"):
            lo, hi = LIMITS[name]
            v[name] = pair(lambda lo=lo, hi=hi: u(lo, hi))
        v["knee"] = pair(lambda: u(0, 130))
        v["torso_bend"] = u(-10, 60)
        v["torso_roll"] = n(0, 12)
        v["torso_twist"] = n(0, 18)
    return clip_pose(v)


def sample_yaw(rng: np.random.Generator) -> float:
    """Facing direction in degrees: mostly towards the camera, some from behind, the rest anywhere."""
    r = rng.uniform()
    if r < 0.45:
        yaw = rng.normal(0.0, 25.0)
    elif r < 0.65:
        yaw = rng.normal(180.0, 25.0)
    else:
        yaw = rng.uniform(-180.0, 180.0)
    return float((yaw + 180.0) % 360.0 - 180.0)


def sample_rotation(rng: np.random.Generator) -> float:
    """In-plane rotation in degrees: mostly upright, 7% at any angle (lying, acrobatics)."""
    if rng.uniform() < 0.07:
        return float(rng.uniform(-180.0, 180.0))
    return float(rng.normal(0.0, 6.0))


# ---------------------------------------------------------------------------------------------
# Kinematics


def rot_x(deg: float) -> np.ndarray:
    """Rotation about the body's left axis; positive tips the down axis (+y) towards forward (+z)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    """Rotation about the vertical axis; positive turns forward (+z) towards the left (+x)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    """Rotation in the frontal plane; positive turns down (+y) towards the left (+x)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def limb_direction(abduction: float, flexion: float, side: float) -> np.ndarray:
    """Direction of a limb hanging down (+y) swung sideways (``side``: +1 left, -1 right) and forwards."""
    a, b = np.radians(abduction), np.radians(flexion)
    return np.array([side * np.sin(a), np.cos(a) * np.cos(b), np.cos(a) * np.sin(b)])


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (``np.cross`` costs ~15× more on single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def rotate_about(v: np.ndarray, axis: np.ndarray, deg: float) -> np.ndarray:
    """Rodrigues rotation of ``v`` about the unit ``axis`` by ``deg`` degrees."""
    a = np.radians(deg)
    return v * np.cos(a) + cross(axis, v) * np.sin(a) + axis * np.dot(axis, v) * (1.0 - np.cos(a))


def hinge_bend(bone: np.ndarray, twist: float, bend: float) -> np.ndarray:
    """Direction of the next bone after a hinge: bends ``bend`` degrees forward (negative: backward).

    The hinge axis is perpendicular to ``bone`` and to forward (+z), turned ``twist`` degrees about the bone.
    """
    axis = cross(bone, np.array([0.0, 0.0, 1.0]))
    norm = np.linalg.norm(axis)
    axis = axis / norm if norm > 0.3 else np.array([1.0, 0.0, 0.0])
    axis = rotate_about(axis, bone, twist)
    return rotate_about(bone, axis, bend)


def skeleton_3d(shape: BodyShape, pose: Pose) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """3-D points in the body frame (units of height): the 17 COCO points and helper points.

    Also returns the rotations of the upper body and of the head (3×3, body frame).
    """
    up = rot_y(pose.torso_twist) @ rot_z(pose.torso_roll) @ rot_x(-pose.torso_bend)
    head = up @ rot_y(pose.head_yaw) @ rot_z(pose.head_roll) @ rot_x(-pose.head_pitch)
    p: dict[str, np.ndarray] = {"pelvis": np.zeros(3)}
    p["neck_base"] = up @ np.array([0.0, -shape.torso, 0.0])
    p["neck_top"] = p["neck_base"] + head @ np.array([0.0, -shape.neck, 0.0])
    p["head"] = p["neck_top"] + head @ np.array([0.0, -shape.head_radius * 0.9, 0.0])
    r = shape.head_radius
    # face points on the head sphere: (left, down, forward) in the head frame
    face = {
        "nose": (0.0, 0.15, 0.99),
        "left_eye": (0.36, -0.2, 0.91),
        "right_eye": (-0.36, -0.2, 0.91),
        "left_ear": (0.97, 0.0, -0.12),
        "right_ear": (-0.97, 0.0, -0.12),
        "mouth": (0.0, 0.5, 0.87),
    }
    for name, offset in face.items():
        p[name] = p["head"] + r * (head @ np.asarray(offset))
    for side, sign, i in (("left", 1.0, 0), ("right", -1.0, 1)):
        shoulder = p["neck_base"] + up @ np.array([sign * shape.shoulder_half, 0.02, 0.0])
        arm = up @ limb_direction(pose.arm_abduction[i], pose.arm_flexion[i], sign)
        fore = hinge_bend(arm, sign * pose.arm_rotation[i], pose.elbow[i])
        p[f"{side}_shoulder"] = shoulder
        p[f"{side}_elbow"] = shoulder + shape.upper_arm * arm
        p[f"{side}_wrist"] = p[f"{side}_elbow"] + shape.forearm * fore
        p[f"{side}_hand"] = p[f"{side}_wrist"] + 0.045 * fore
        hip = np.array([sign * shape.hip_half, 0.0, 0.0])
        thigh = limb_direction(pose.leg_abduction[i], pose.leg_flexion[i], sign)
        shank = hinge_bend(thigh, sign * pose.leg_rotation[i], -pose.knee[i])
        p[f"{side}_hip"] = hip
        p[f"{side}_knee"] = hip + shape.thigh * thigh
        p[f"{side}_ankle"] = p[f"{side}_knee"] + shape.shank * shank
        toe = np.array([0.0, 0.0, 1.0]) - np.dot([0.0, 0.0, 1.0], shank) * shank
        norm = np.linalg.norm(toe)
        toe = toe / norm if norm > 1e-3 else shank
        p[f"{side}_toe"] = p[f"{side}_ankle"] + shape.foot * toe
    return p, up, head


def _project(points: np.ndarray, place: Placement) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame points (N×3) → image xy (N×2, px) and camera depth (N, larger = nearer)."""
    cam = points @ rot_y(place.yaw).T
    a = np.radians(place.rotation)
    c, s = np.cos(a), np.sin(a)
    xy = cam[:, :2] @ np.array([[c, s], [-s, c]]) * place.height + np.array([place.x, place.y])
    return xy, cam[:, 2] * place.height


def person_geometry(shape: BodyShape, pose: Pose, place: Placement) -> PersonGeometry:
    """Project the body into the image: keypoints in COCO order and the parts to draw, back to front."""
    p, up, head = skeleton_3d(shape, pose)
    names = list(p)
    xy_all, z_all = _project(np.stack([p[n] for n in names]), place)
    xy = dict(zip(names, xy_all, strict=True))
    z = dict(zip(names, z_all, strict=True))
    h = place.height
    keypoints = np.stack([xy[name] for name in COCO.keypoint_names])
    parts: list[Part] = []

    def capsule(label: str, a: str, b: str, r1: float, r2: float, bias: float = 0.0) -> None:
        data = np.array([*xy[a], *xy[b], max(r1 * h, 1.0), max(r2 * h, 1.0)])
        parts.append(Part(LABEL[label], 0.5 * (z[a] + z[b]) + bias * h, "capsule", data))

    ra, rl = shape.arm_radius, shape.leg_radius
    for side, s in (("left", "l"), ("right", "r")):
        capsule(f"upper_arm_{s}", f"{side}_shoulder", f"{side}_elbow", ra * 1.1, ra)
        capsule(f"forearm_{s}", f"{side}_elbow", f"{side}_wrist", ra * 0.85, ra * 0.7, bias=0.002)
        capsule(f"hand_{s}", f"{side}_wrist", f"{side}_hand", ra * 0.75, ra * 0.95, bias=0.004)
        capsule(f"thigh_{s}", f"{side}_hip", f"{side}_knee", rl * 1.1, rl * 0.85)
        capsule(f"shank_{s}", f"{side}_knee", f"{side}_ankle", rl * 0.8, rl * 0.6, bias=0.002)
        capsule(f"foot_{s}", f"{side}_ankle", f"{side}_toe", rl * 0.6, rl * 0.5, bias=0.004)
    capsule("neck", "neck_base", "neck_top", 0.035, 0.03, bias=-0.01)

    # torso: two halves (left, right) of a box from the hip line to the shoulder line
    d = shape.torso_depth
    for label, sign in (("torso_l", 1.0), ("torso_r", -1.0)):
        top_w = shape.shoulder_half + 0.6 * ra
        bot_w = shape.hip_half + 0.7 * rl
        corners = []
        for x_top, x_bot in ((0.0, 0.0), (sign * top_w, sign * bot_w)):
            for dz in (-d, d):
                corners.append(p["neck_base"] + up @ np.array([x_top, 0.0, dz]))
                corners.append(np.array([x_bot, 0.04, 0.8 * dz]))
        cxy, cz = _project(np.stack(corners), place)
        parts.append(Part(LABEL[label], float(cz.mean()), "polygon", cxy))
    # front placket (shirt opening): marks the chest side, drawn only when the chest faces the camera
    front_top = p["neck_base"] + up @ np.array([0.0, 0.02, d])
    front_bot = p["neck_base"] + up @ np.array([0.0, shape.torso * 0.7, d])
    fxy, fz = _project(np.stack([front_top, front_bot, p["neck_base"]]), place)
    if fz[0] - fz[2] > 0.3 * d * h:
        data = np.array([*fxy[0], *fxy[1], max(0.012 * h, 0.6), max(0.012 * h, 0.6)])
        parts.append(Part(LABEL["placket"], float(fz[:2].mean()) + 1e-3 * h, "capsule", data))

    parts.extend(_head_parts(head @ np.array([0.0, 0.0, 1.0]), xy, z, shape, place))
    parts.sort(key=lambda part: part.depth)
    return PersonGeometry(keypoints=keypoints, parts=tuple(parts))


def _head_parts(
    head_forward: np.ndarray,
    xy: dict[str, np.ndarray],
    z: dict[str, float],
    shape: BodyShape,
    place: Placement,
) -> list[Part]:
    """Head (hair disc), face disc, eyes, nose, mouth and ears, drawn as one group in front-to-back order."""
    h = place.height
    r = shape.head_radius * h
    base = z["head"]
    eps = 1e-4 * h
    fwd_xy, fwd_z = _project(np.stack([head_forward, np.zeros(3)]), place)
    forward = (fwd_xy[0] - fwd_xy[1]) / h  # projected unit forward, length = sin of angle to view axis
    facing = fwd_z[0] / h  # cos of the angle between face and camera
    parts: list[Part] = []
    for ear in ("left_ear", "right_ear"):
        label = LABEL["ear_l" if ear == "left_ear" else "ear_r"]
        # an ear on the camera side is drawn over the head, the other one peeks out behind it
        depth = base + (5 * eps if z[ear] > base + 0.3 * r else -eps)
        parts.append(Part(label, depth, "circle", np.array([*xy[ear], max(0.28 * r, 1.0)])))
    parts.append(Part(LABEL["hair"], base, "circle", np.array([*xy["head"], max(r, 1.5)])))
    # every face keypoint gets a small disc of the head colour so its pixel is always the person's
    for name in ("nose", "left_eye", "right_eye"):
        parts.append(Part(LABEL["hair"], base + eps, "circle", np.array([*xy[name], 1.0])))
    if facing > -0.15:
        centre = xy["head"] + 0.5 * r * forward
        fwd_norm = float(np.linalg.norm(forward))
        angle = float(np.degrees(np.arctan2(forward[1], forward[0]))) if fwd_norm > 1e-6 else 0.0
        minor = 0.78 * r * max(np.sqrt(max(1.0 - fwd_norm**2, 0.0)), 0.45)
        data = np.array([*centre, max(minor, 0.5), 0.78 * r, angle])
        parts.append(Part(LABEL["face"], base + 2 * eps, "ellipse", data))
        for name, label, size in (
            ("left_eye", "eye", 0.13),
            ("right_eye", "eye", 0.13),
            ("nose", "nose", 0.14),
        ):
            if z[name] > base + 0.1 * r:
                parts.append(
                    Part(LABEL[label], base + 3 * eps, "circle", np.array([*xy[name], max(size * r, 0.8)]))
                )
        if z["mouth"] > base + 0.2 * r:
            down = xy["mouth"] - xy["head"]
            side = np.array([-down[1], down[0]])
            side = side / (np.linalg.norm(side) + 1e-9) * 0.22 * r * max(facing, 0.3)
            data = np.array(
                [*(xy["mouth"] - side), *(xy["mouth"] + side), max(0.06 * r, 0.5), max(0.06 * r, 0.5)]
            )
            parts.append(Part(LABEL["mouth"], base + 3 * eps, "capsule", data))
    return parts
