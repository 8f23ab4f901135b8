"""Prediction on photos: ``python -m aidpose.predict ckpt_path=PATH input=IMAGE_OR_FOLDER output=DIR [boxes=FILE]``.

Writes into ``output``: ``predictions.json`` (COCO keypoint results, each with its image's ``file_name``),
``summary.json`` (counts of images, boxes and what was skipped) and ``vis/<stem>.png`` with the skeletons
drawn. With ``image_info=FILE`` (a COCO file of images, e.g. test-dev's ``image_info_test-dev2017.json``) it
predicts the images that file lists, under its image ids, and writes ``results.json`` too: the results alone, in
the format the COCO evaluation server takes (no metric here: the file has no ground truth). Through the module's ``predict_people`` (``aidpose.inference.PosePredictor``): a top-down checkpoint crops
the person boxes of ``boxes`` (see :func:`read_boxes`; without it each image is one box), a bottom-up one finds
every person itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from aidpose.runtime import CONFIG_PATH

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
BoxTable = dict[str, tuple[np.ndarray, np.ndarray]]


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def main(cfg: DictConfig) -> None:
    """Hydra task: predict poses on the images of ``cfg.input``."""
    predict(cfg)


def list_images(path: str | Path) -> list[Path]:
    """The image file ``path`` or the images (by suffix) directly in the folder ``path``, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input={path} does not exist: give an image file or a folder of images")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"input={path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def image_ids(files: Sequence[Path]) -> list[int]:
    """COCO image ids: the numeric file stems when every stem is a distinct number, else 1, 2, ... in order."""
    stems = [f.stem for f in files]
    if all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(files) + 1))


def info_images(path: str | Path, folder: str | Path) -> tuple[list[Path], list[int]]:
    """The image files (in ``folder``) and ids that a COCO image-info file (``images`` with ``id`` and
    ``file_name``, annotations not needed) lists, in its order."""
    path, folder = Path(path), Path(folder)
    try:
        images = json.loads(path.read_text())["images"]
        files, ids = [folder / image["file_name"] for image in images], [int(image["id"]) for image in images]
    except FileNotFoundError:
        raise FileNotFoundError(f"image_info={path} does not exist") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"image_info={path}: expected a COCO file with an 'images' list of {{id, file_name}} ({err!r})"
        ) from err
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(files)} images of image_info={path} are not in input={folder}, the "
            f"first: {missing[0]}; give the folder of its images as input"
        )
    return files, ids


def _box_rows(rows: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """[[x, y, w, h(, score)], ...] → boxes (N, 4) and scores (N,) (score 1 when absent)."""
    if not isinstance(rows, list) or any(
        not isinstance(r, (list, tuple)) or len(r) not in (4, 5) for r in rows
    ):
        raise ValueError(
            f"{where}: expected a list of [x, y, w, h] or [x, y, w, h, score] boxes, got {rows!r}"
        )
    boxes = np.array([r[:4] for r in rows], dtype=np.float64).reshape(-1, 4)
    scores = np.array([r[4] if len(r) == 5 else 1.0 for r in rows], dtype=np.float32)
    return boxes, scores


def read_boxes(
    path: str | Path, files: Sequence[Path], counts: Counter, ids: Sequence[int] | None = None
) -> BoxTable:
    """Person boxes per image file name from a boxes JSON, counting what does not match ``files``.

    Two formats: a COCO detection-results list (``image_id``, ``category_id``, ``bbox`` = [x, y, w, h],
    ``score``), matched to images by ``image_id`` = the numeric file stem (or the files' ``ids`` when given),
    keeping category 1 (person); or
    ``{file_name: [[x, y, w, h(, score)], ...]}`` keyed by the image's file name (score 1 when absent).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"boxes={path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"boxes={path} is not valid JSON ({err})") from err
    names = {f.name for f in files}
    table: BoxTable = {}
    if isinstance(data, dict):
        for name, rows in data.items():
            counts["boxes_in_file"] += len(rows) if isinstance(rows, list) else 0
            if name not in names:
                counts["skipped_unknown_image"] += len(rows) if isinstance(rows, list) else 0
                continue
            table[name] = _box_rows(rows, f"boxes={path} entry {name!r}")
        return table
    if not isinstance(data, list):
        raise ValueError(
            f"boxes={path}: expected a COCO detection-results list or a {{file_name: [[x, y, w, h(, score)]]}} "
            f"object, got {type(data).__name__}"
        )
    if ids is None:
        by_id = {int(f.stem): f.name for f in files if f.stem.isdigit()}
    else:
        by_id = {image_id: f.name for f, image_id in zip(files, ids, strict=True)}
    rows: dict[str, list[list[float]]] = {}
    for i, det in enumerate(data):
        if not isinstance(det, dict) or not {"image_id", "category_id", "bbox", "score"} <= det.keys():
            raise ValueError(
                f"boxes={path} entry {i}: a COCO detection result needs image_id, category_id, bbox, score"
            )
        counts["boxes_in_file"] += 1
        if det["category_id"] != 1:
            counts["skipped_non_person"] += 1
        elif det["image_id"] not in by_id:
            counts["skipped_unknown_image"] += 1
        else:
            rows.setdefault(by_id[det["image_id"]], []).append([*det["bbox"], det["score"]])
    return {name: _box_rows(r, f"boxes={path} image {name}") for name, r in rows.items()}


def predict(cfg: DictConfig) -> dict[str, Any]:
    import cv2

    from aidpose.builders import config_from_checkpoint, load_module_from_checkpoint
    from aidpose.data.images import UnreadableImageError, decode_file
    from aidpose.drawing import draw_poses
    from aidpose.evaluation.results import coco_results
    from aidpose.inference import filter_boxes
    from aidpose.runtime import command_line_keys
    from aidpose.training.checkpoints import read_checkpoint

    ckpt_path = str(cfg.ckpt_path)
    ckpt = read_checkpoint(ckpt_path)
    run = config_from_checkpoint(ckpt, cfg, ckpt_path, command_line_keys())
    module = load_module_from_checkpoint(run, ckpt, ckpt_path).to(cfg.device)
    test = run.test
    if cfg.image_info is None:
        files = list_images(cfg.input)
        ids = image_ids(files)
    else:
        files, ids = info_images(cfg.image_info, cfg.input)
    counts: Counter = Counter(images=len(files))
    if cfg.boxes is not None and not module.needs_boxes:
        raise ValueError(
            f"boxes={cfg.boxes}: {ckpt_path} is a {run.paradigm.name} checkpoint, which finds every person "
            "without boxes; drop boxes= (it is for top-down checkpoints)"
        )
    info_ids = None if cfg.image_info is None else ids  # detections matched by the image-info file's ids
    table = None if cfg.boxes is None else read_boxes(cfg.boxes, files, counts, info_ids)
    if table is None and module.needs_boxes:
        print("[aidpose] no boxes file (boxes=null): each image is one person box, the whole image")
    out = Path(cfg.output)
    vis = out / "vis"
    if cfg.draw:
        vis.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for file, image_id in zip(files, ids, strict=True):
        try:
            image, _ = decode_file(file)
        except UnreadableImageError:  # missing, not an image, or damaged (truncated)
            counts["skipped_unreadable_image"] += 1
            continue
        boxes = None
        if table is not None:
            height, width = image.shape[:2]
            found, scores = table.get(file.name, (np.zeros((0, 4)), np.zeros(0, dtype=np.float32)))
            found, scores, skipped = filter_boxes(
                found, scores, (width, height), test.det_score_thr, test.min_box_area
            )
            counts.update(skipped)
            counts["images_without_boxes"] += int(len(found) == 0)
            boxes = [np.concatenate([found, scores[:, None]], axis=1)]
        [people] = module.predict_people([image], boxes)
        image_results = coco_results(
            {
                "image_id": np.full(len(people.scores), image_id),
                "keypoints": people.keypoints,
                "score": people.scores,
            }
        )
        counts["persons"] += len(image_results)
        results += [{**r, "file_name": file.name} for r in image_results]
        if cfg.draw:
            cv2.imwrite(
                str(vis / f"{file.stem}.png"),
                draw_poses(image, people.keypoints, module.layout, cfg.draw_kpt_thr),
            )
    summary = {
        "ckpt_path": ckpt_path,
        "input": str(cfg.input),
        "boxes": cfg.boxes,
        "image_info": cfg.image_info,
        **dict(sorted((+counts).items())),
    }
    (out / "predictions.json").write_text(json.dumps(results))
    if cfg.image_info is not None:  # the submission: the results alone, under the image-info file's ids
        plain = [{k: v for k, v in r.items() if k != "file_name"} for r in results]
        (out / "results.json").write_text(json.dumps(plain))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    skipped = {k: v for k, v in summary.items() if k.startswith("skipped") or k == "images_without_boxes"}
    print(
        f"[aidpose] {counts['persons']} persons on {len(files)} images" + (f"; {skipped}" if skipped else "")
    )
    written = "predictions.json" + (", results.json" if cfg.image_info is not None else "")
    print(f"[aidpose] {written}" + (", vis/*.png" if cfg.draw else "") + f" in {out}")
    if cfg.image_info is not None:
        print(
            f"[aidpose] results.json: the COCO results of the images of {cfg.image_info}, the format the evaluation "
            "server scores; no metric is computed here (no ground truth)"
        )
    return summary


if __name__ == "__main__":
    main()
