"""SynthPose: a procedural COCO-format multi-person keypoint dataset with real occlusion.

Articulated 2-D renderings of 3-D stick bodies (COCO's 17 keypoints) among clutter, limb-like distractors,
occluders and each other. Hidden joints (v=1) sit at their true positions, so their location can only be
inferred from body structure and context: the benchmark for occlusion robustness (AID).

Public API:
    generate_synthpose(out_dir, *, num_train, num_val, seed, image_size=256, preset="default") -> Path
    ensure_synthpose(cache_root, *, num_train, num_val, seed, image_size=256, preset="default") -> Path
    render_sample(seed, index, *, split="train", image_size=256, preset="default")
        -> RenderedImage(image, annotations, owner)
    dataset_statistics(coco_dict_or_path) -> dict, crowd_index(keypoints, boxes) -> float
    write_preview(dataset_dir, png_path, *, split="val", count=12) -> Path
CLI: ``python -m aidpose.data.synthpose --out DIR --num-train N --num-val M --seed S``.
"""

from aidpose.data.synthpose.cache import dataset_folder_name, ensure_synthpose
from aidpose.data.synthpose.dataset_statistics import crowd_index, dataset_statistics
from aidpose.data.synthpose.generate import GENERATOR_VERSION, MANIFEST_NAME, generate_synthpose
from aidpose.data.synthpose.preview import write_preview
from aidpose.data.synthpose.scene import OCCLUDER_OWNER_BASE, PRESETS, RenderedImage, render_sample

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "OCCLUDER_OWNER_BASE",
    "PRESETS",
    "RenderedImage",
    "crowd_index",
    "dataset_folder_name",
    "dataset_statistics",
    "ensure_synthpose",
    "generate_synthpose",
    "render_sample",
    "write_preview",
]
