"""Where a dataset's annotation files and images live: SynthPose (generated), a COCO-style folder, CrowdPose, and
training mixes of several datasets (COCO + AI Challenger)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from aidpose.runtime import write_json


@dataclass(frozen=True)
class TrainPart:
    """One more training set of a mix: its name, annotation file (in the run's layout), images, sampling ratio."""

    name: str
    ann: Path
    images: Path
    ratio: float


@dataclass(frozen=True)
class DataSplits:
    """Annotation file and image folder of the train and val splits; a mix adds training sets
    (``extra_train``), sampled with the train split's ``train_ratio`` and their own ratios
    (``aidpose.data.mixed.MixedDataset``); a test file (``test_ann``, e.g. COCO test-dev's images without
    annotations) is what ``aidpose.evaluate`` evaluates in place of the val split."""

    train_ann: Path
    train_images: Path
    val_ann: Path
    val_images: Path
    train_ratio: float = 1.0
    extra_train: tuple[TrainPart, ...] = ()
    test_ann: Path | None = None
    test_images: Path | None = None


@dataclass(frozen=True)
class SynthPoseSource:
    """SynthPose, generated on first use into ``cache_root`` (one folder per parameter set) and reused."""

    cache_root: str
    num_train: int
    num_val: int
    seed: int
    image_size: int = 256
    preset: str = "default"

    def prepare(self) -> DataSplits:
        from aidpose.data.synthpose import ensure_synthpose

        root = ensure_synthpose(
            self.cache_root,
            num_train=self.num_train,
            num_val=self.num_val,
            seed=self.seed,
            image_size=self.image_size,
            preset=self.preset,
        )
        return DataSplits(
            train_ann=root / "annotations" / "person_keypoints_train.json",
            train_images=root / "images" / "train",
            val_ann=root / "annotations" / "person_keypoints_val.json",
            val_images=root / "images" / "val",
        )


@dataclass(frozen=True)
class CocoSource:
    """A COCO-format dataset folder (COCO keypoints, CrowdPose): ``root`` + relative file names.

    ``test_file`` (relative to ``root`` or absolute; e.g. ``annotations/image_info_test-dev2017.json``, images
    only) with its images in ``test_images``: the set ``aidpose.evaluate`` evaluates instead of the val split.
    """

    root: str
    train_ann: str
    train_images: str
    val_ann: str
    val_images: str
    download_hint: str = ""
    test_file: str | None = None
    test_images: str = "test2017"

    def prepare(self) -> DataSplits:
        root = Path(self.root)
        test = self.test_file is not None
        splits = DataSplits(
            train_ann=root / self.train_ann,
            train_images=root / self.train_images,
            val_ann=root / self.val_ann,
            val_images=root / self.val_images,
            test_ann=root / self.test_file if test else None,
            test_images=root / self.test_images if test else None,
        )
        for name, path in vars(splits).items():
            if isinstance(path, Path) and not path.exists():
                raise FileNotFoundError(
                    f"dataset {name}: {path} does not exist. Set dataset.source.root=DIR to the folder holding "
                    f"the data. {self.download_hint}".rstrip()
                )
        return splits


@dataclass(frozen=True)
class CrowdPoseSource:
    """CrowdPose as its authors ship it: ``root/json/crowdpose_<split>.json`` and ``root/images/``.

    The paper (and HigherHRNet) train on ``trainval`` and test on ``test``.
    """

    root: str
    train_split: str = "trainval"
    val_split: str = "test"

    def prepare(self) -> DataSplits:
        return CocoSource(
            root=self.root,
            train_ann=f"json/crowdpose_{self.train_split}.json",
            train_images="images",
            val_ann=f"json/crowdpose_{self.val_split}.json",
            val_images="images",
            download_hint=(
                "Get images.zip and the json/ annotations from https://github.com/Jeff-sjtu/CrowdPose; "
                "crowdpose_trainval.json is the concatenation of crowdpose_train.json and crowdpose_val.json."
            ),
        ).prepare()


@dataclass(frozen=True)
class ExtraTrainSource:
    """A training set added to another dataset's, e.g. AI Challenger's to COCO's: ``root`` + file names, its
    annotation file converted to the run's keypoint layout by ``convert`` (a function of the whole COCO-format
    file, e.g. ``aidpose.data.aic.aic_dataset_to_coco``) once into ``cache_dir`` and reused while the file is
    unchanged (size and modification time)."""

    root: str
    train_ann: str
    train_images: str
    ratio: float
    convert: Callable[[dict], dict]
    cache_dir: str
    download_hint: str = ""

    def prepare(self, name: str) -> TrainPart:
        source, images = Path(self.root) / self.train_ann, Path(self.root) / self.train_images
        for path in (source, images):
            if not path.exists():
                raise FileNotFoundError(
                    f"dataset.source.extra.{name}: {path} does not exist. Set dataset.source.extra.{name}.root=DIR "
                    f"to the folder holding the data. {self.download_hint}".rstrip()
                )
        stat = source.stat()
        convert = getattr(self.convert, "func", self.convert)  # a functools.partial from the config
        key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{convert.__module__}.{convert.__qualname__}"
        target = Path(self.cache_dir) / f"{source.stem}_{hashlib.sha1(key.encode()).hexdigest()[:12]}.json"
        if not target.exists():  # ranks converting at once write their own temporary files
            write_json(target, self.convert(json.loads(source.read_text())), indent=None)
        return TrainPart(name, target, images, float(self.ratio))


@dataclass(frozen=True)
class MixedCocoSource(CocoSource):
    """A COCO-format folder's splits (validation: its own alone) with the training sets of ``extra`` sampled
    alongside its train split, each set with its ratio (``ratio``: the folder's), as mmpose's
    ``CombinedDataset``."""

    ratio: float = 1.0
    extra: Mapping[str, ExtraTrainSource] = field(default_factory=dict)

    def prepare(self) -> DataSplits:
        extra = tuple(source.prepare(name) for name, source in self.extra.items())
        return replace(super().prepare(), train_ratio=float(self.ratio), extra_train=extra)
