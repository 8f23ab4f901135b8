"""Where a dataset's annotation files and images live: SynthPose (generated), a COCO-style folder, CrowdPose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataSplits:
    """Annotation file and image folder of the train and val splits."""

    train_ann: Path
    train_images: Path
    val_ann: Path
    val_images: Path


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
    """A COCO-format dataset folder (COCO keypoints, CrowdPose): ``root`` + relative file names."""

    root: str
    train_ann: str
    train_images: str
    val_ann: str
    val_images: str
    download_hint: str = ""

    def prepare(self) -> DataSplits:
        root = Path(self.root)
        splits = DataSplits(
            train_ann=root / self.train_ann,
            train_images=root / self.train_images,
            val_ann=root / self.val_ann,
            val_images=root / self.val_images,
        )
        for name, path in vars(splits).items():
            if not path.exists():
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
