"""Shared fixtures (the real COCO fixture, one tiny trained run and its evaluations) and a quiet, offline
environment, safe under pytest-xdist (``make test`` runs the suite on every core)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from filelock import FileLock

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    # xdist workers share the cores: each gets its share of OpenMP threads (set before torch is imported),
    # or the spinning threads of concurrent workers slow each other down many times over
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO_MINI = REPO_ROOT / "tests" / "data" / "coco_mini"
AIC_MINI = REPO_ROOT / "tests" / "data" / "aic_mini"  # AI Challenger-format people on coco_mini's photos


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n N``), hand tests to the workers one at a time: by default each worker first
    gets a block of consecutive tests (a quarter of its share), so one worker would get all the slow tests
    (sorted first below)."""
    if config.pluginmanager.hasplugin("xdist") and config.getoption("maxschedchunk") is None:
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, so that the quick ones fill the xdist workers up to the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise


def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder, shared by all xdist workers (each worker's own is inside it)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if "PYTEST_XDIST_WORKER" in os.environ else root


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """The folder ``<session root>/<name>``, filled by ``make(folder)`` once per session: the first xdist
    worker to ask makes it while the others wait on a lock, then all read it. A ``make`` that failed leaves
    no ``.done`` mark: the next test asking tries again (and reports the same error)."""
    root = session_root(tmp_path_factory)
    folder = root / name
    with FileLock(root / f"{name}.lock"):
        if not (folder / ".done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".done").touch()
    return folder


@pytest.fixture
def ddp_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held by a test that starts two DDP processes: two such tests side by side (xdist) would be four
    processes on two cores."""
    with FileLock(session_root(tmp_path_factory) / "ddp.lock"):
        yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """The four real COCO val2017 photos with their annotations and detector boxes (tests/data/coco_mini)."""
    return COCO_MINI


class CliRun(NamedTuple):
    run_dir: Path
    stdout: str


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """``python -m aidpose.train debug=fast`` (tiny HRNet on a tiny SynthPose, the default logger), made once
    per session: test_train_cli checks the run, the evaluate/predict/occlusion tests use its checkpoint."""
    from tests.helpers import run_cli

    def train(root: Path) -> None:
        proc = run_cli("aidpose.train", "debug=fast", f"hydra.run.dir={root / 'run'}", cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (root / "stdout.txt").write_text(proc.stdout)

    root = made_once(tmp_path_factory, "tiny_run", train)
    return CliRun(root / "run", (root / "stdout.txt").read_text())


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run: CliRun) -> Path:
    """last.ckpt of the tiny run."""
    return tiny_run.run_dir / "last.ckpt"


@pytest.fixture(scope="session")
def coco_mini_odd(coco_mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco_mini with one annotated person removed: 11 instances, an odd number (DDP pads it)."""
    root = tmp_path_factory.mktemp("coco_mini_odd")
    dataset = json.loads((coco_mini / "test_coco.json").read_text())
    with_keypoints = [a for a in dataset["annotations"] if a["num_keypoints"] > 0]
    dataset["annotations"] = [a for a in dataset["annotations"] if a["id"] != with_keypoints[-1]["id"]]
    (root / "test_coco.json").write_text(json.dumps(dataset))
    for image in dataset["images"]:
        (root / image["file_name"]).symlink_to(coco_mini / image["file_name"])
    return root


@pytest.fixture(scope="session")
def coco_dataset_args() -> Callable[[Path], list[str]]:
    """Overrides that make ``dataset=coco`` read ``ROOT/test_coco.json`` and the images in ROOT (train = val)."""

    def args(root: Path) -> list[str]:
        return [
            "dataset=coco",
            f"dataset.source.root={root}",
            "dataset.source.train_ann=test_coco.json",
            "dataset.source.val_ann=test_coco.json",
            "dataset.source.train_images=.",
            "dataset.source.val_images=.",
        ]

    return args


def run_evaluate(root: Path, checkpoint: Path, *args: str) -> Path:
    """Run ``aidpose.evaluate`` on ``checkpoint`` with ``args`` into ``root/run``; return the run folder."""
    from tests.helpers import run_cli

    run_dir = root / "run"
    proc = run_cli(
        "aidpose.evaluate", f"ckpt_path={checkpoint}", *args, f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false", cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def eval_gt_run(tiny_checkpoint, coco_mini_odd, coco_dataset_args, tmp_path_factory) -> Path:
    """Run folder of ``aidpose.evaluate`` (one process) of the tiny checkpoint on coco_mini_odd, GT boxes."""
    args = coco_dataset_args(coco_mini_odd)
    root = made_once(tmp_path_factory, "eval_gt", lambda root: run_evaluate(root, tiny_checkpoint, *args))
    return root / "run"


DET_EVAL_OPTIONS = ("test.boxes=detections", "test.nms=soft_oks", "test.det_score_thr=0.5")


@pytest.fixture(scope="session")
def eval_det_run(tiny_checkpoint, coco_mini, coco_dataset_args, tmp_path_factory) -> Path:
    """Run folder of ``aidpose.evaluate`` on coco_mini with its detector boxes (``DET_EVAL_OPTIONS``)."""
    args = [
        *coco_dataset_args(coco_mini),
        *DET_EVAL_OPTIONS,
        f"test.det_file={coco_mini / 'test_coco_det_AP_H_56.json'}",
    ]
    root = made_once(tmp_path_factory, "eval_det", lambda root: run_evaluate(root, tiny_checkpoint, *args))
    return root / "run"
