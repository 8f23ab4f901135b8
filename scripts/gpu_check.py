"""The five-minute GPU check (issue 25), called by scripts/gpu_check.sh: prints ONE JSON.

On one CUDA GPU: training throughput (images/s) and the share of step time spent waiting for data of HRNet-W32
256×192 top-down and HigherHRNet-W32 512 bottom-up, in bf16-mixed and fp32, with 0/4/8/12 loader workers, on
SynthPose (generated first); inference images/s with the flip test; peak GPU memory; and the AP of a 2-epoch
bf16-mixed SynthPose run through ``aidpose.train``. Every step has a share of ``--budget-s`` and stops at it
with what it measured; at the budget (or SIGTERM) the JSON is printed with the steps not reached marked.

``--dry-run`` (a CPU, under a minute; tests/test_gpu_check.py): the same configs, datasets and models are built
and one fp32 step of each kind runs on tiny data and a small model with the loader in the main process, so the
JSON has every field of one configuration.

    python scripts/gpu_check.py [--budget-s 300] [--dry-run] [--tests-summary "12 passed in 40s"]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, RandomSampler

from aidpose.builders import build_codec, build_datamodule, build_module
from aidpose.runtime import compose_outside_cli

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "hrnet_w32_256x192_topdown": ["experiment=coco/hrnet_w32_256x192", "test.boxes=gt", "test.det_file=null"],
    "higherhrnet_w32_512_bottomup": ["experiment=coco_higherhrnet_w32_512"],
}
PRECISIONS = ("bf16-mixed", "32-true")
WORKERS = (0, 4, 8, 12)
SYNTHPOSE = {"num_train": 800, "num_val": 200}  # ~2,000 top-down crops; ~12 s to generate (one process)
SHARES = {"throughput": 0.62, "inference": 0.08, "short_run": 0.30}
"""Shares of the budget left after the data is generated (the short run gets what the others leave)."""


DRY_RUN_MODEL = ["debug=fast", "backbone=hrnet_w18_small"]
"""What the dry run times its steps with: a small model and input (on a CPU, one bf16 HRNet-W32 step takes
tens of seconds); the real models are built too, which checks their configs and output sizes."""


class OutOfTime(Exception):
    """The whole check's budget is spent (SIGALRM/SIGTERM)."""


def _out_of_time(signum: int, frame: Any) -> None:
    raise OutOfTime(signal.Signals(signum).name)


def compose_run(overrides: list[str], root: Path) -> DictConfig:
    """The training config of ``overrides`` as ``aidpose.train`` composes it, data and outputs under ``root``."""
    return compose_outside_cli("train", overrides, root, root / "data", root / "run")


def data_overrides(dry_run: bool) -> list[str]:
    sizes = {"num_train": 8, "num_val": 4} if dry_run else SYNTHPOSE
    return ["dataset=synthpose", "backbone.pretrained=false"] + [
        f"dataset.source.{k}={v}" for k, v in sizes.items()
    ]


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def peak_memory_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_throughput(
    module: torch.nn.Module,
    dataset: Dataset,
    batch_size: int,
    workers: int,
    precision: str,
    device: torch.device,
    seconds: float,
    warmup: int,
    max_steps: int,
) -> dict[str, Any]:
    """Images/s of forward + loss + backward + Adam step over the loader, and the share of the step time the
    GPU waited for data (blocked in the loader; each step is synchronised)."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=RandomSampler(dataset, replacement=True, num_samples=batch_size * (warmup + max_steps)),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        collate_fn=dataset.collate,
    )
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    waited = stepped = 0.0
    steps = 0
    stop = time.perf_counter() + seconds
    batches = iter(loader)
    for n in range(warmup + max_steps):
        start = time.perf_counter()
        batch = to_device(next(batches), device)
        ready = time.perf_counter()
        with autocast:
            loss = module.training_losses(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        if n >= warmup:
            waited += ready - start
            stepped += time.perf_counter() - start
            steps += 1
        if n >= warmup and time.perf_counter() > stop:
            break
    del batches
    return {
        "images_per_s": round(steps * batch_size / stepped, 1) if steps else None,
        "data_wait_share": round(waited / stepped, 3) if steps else None,
        "steps": steps,
        "peak_gpu_memory_gib": peak_memory_gib(device),
        "loss_finite": bool(torch.isfinite(loss).item()),
    }


def inference_throughput(
    module: torch.nn.Module, cfg: DictConfig, val_dataset: Dataset, device: torch.device, seconds: float
) -> dict[str, Any]:
    """Images (top-down: crops) per second of the module's ``predict_step`` (the validation path: flip test
    when the codec asks for it, decoding to image pixels) on one validation batch, bf16 autocast on a GPU."""
    module.eval()
    items = [val_dataset[i] for i in range(min(len(val_dataset), cfg.loader.val_batch_size))]
    if module.needs_boxes:  # top-down: a collated batch of crops on the device
        batch: Any = to_device(val_dataset.collate(items), device)
    else:  # bottom-up: a list of whole images at the test scales (the module moves them)
        batch = items
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    done, start, stop = 0, time.perf_counter(), time.perf_counter() + seconds
    with torch.inference_mode(), autocast:
        while done == 0 or time.perf_counter() < stop:
            module.predict_step(batch)
            synchronize(device)
            done += len(items)
    module.train()
    return {
        "images_per_s": round(done / (time.perf_counter() - start), 1),
        "flip_test": bool(module.codec.flip_test),
        "batch": len(items),
        "peak_gpu_memory_gib": peak_memory_gib(device),
    }


def short_run_overrides(dry_run: bool, workers: int) -> list[str]:
    """``aidpose.train`` for 2 epochs of SynthPose in bf16-mixed (the CPU default's model and input size)."""
    if dry_run:
        return ["debug=fast", "trainer=cpu", "logger=none"]
    return [
        "experiment=synthpose_cpu_topdown",
        "trainer=gpu",
        "trainer.precision=bf16-mixed",
        "trainer.enable_progress_bar=false",
        "logger=none",
        "schedule.epochs=2",
        "schedule.milestones=[]",
        "schedule.warmup_steps=50",
        f"loader.num_workers={workers}",
        "loader.pin_memory=true",
        *(f"dataset.source.{k}={v}" for k, v in SYNTHPOSE.items()),
    ]


def short_run(root: Path, overrides: list[str], seconds: float) -> dict[str, Any]:
    """Run ``aidpose.train``; its AP, epochs and seconds from metrics.json."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
    }
    run_dir = root / "short_run"
    command = [sys.executable, "-m", "aidpose.train", *overrides, f"paths.data_dir={root / 'data'}",
               f"hydra.run.dir={run_dir}"]  # fmt: skip
    try:
        proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        return {"status": f"stopped at its budget of {seconds:.0f} s"}
    metrics_file = run_dir / "metrics.json"
    if proc.returncode or not metrics_file.is_file():
        return {"status": "failed", "returncode": proc.returncode, "stderr_tail": proc.stderr[-1500:]}
    metrics = json.loads(metrics_file.read_text())
    return {
        "status": metrics["status"],
        "AP": round(metrics["metrics"].get("AP", float("nan")), 4),
        "epochs": metrics["epochs"],
        "seconds": metrics["seconds"],
        "precision": next(
            (o.split("=", 1)[1] for o in overrides if o.startswith("trainer.precision=")), "32-true"
        ),
    }


@contextmanager
def step(results: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Record a step's figures under ``name``, its seconds, and an error instead of stopping the check."""
    entry: dict[str, Any] = {}
    results[name] = entry
    start = time.perf_counter()
    try:
        yield entry
    except OutOfTime:
        entry["status"] = "stopped: the check's time budget is spent"
        raise
    except Exception as err:  # one failing step must not hide the others' figures
        entry["status"] = f"failed: {type(err).__name__}: {err}"
    finally:
        entry["seconds"] = round(time.perf_counter() - start, 1)


def run_checks(args: argparse.Namespace, results: dict[str, Any], root: Path) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    if device.type != "cuda" and not args.dry_run:
        raise RuntimeError("no CUDA GPU visible to torch: run with --dry-run on a CPU")
    torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    results["environment"] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "budget_s": args.budget_s,
    }
    with step(results, "synthpose") as entry:
        cfg = compose_run(data_overrides(args.dry_run), root)
        splits = build_datamodule(cfg, build_codec(cfg)).source.prepare()
        entry["images"] = {
            "train": len(list(splits.train_images.iterdir())),
            "val": len(list(splits.val_images.iterdir())),
        }
    left = args.budget_s - (time.perf_counter() - started)
    workers = (0,) if args.dry_run else WORKERS
    precisions = ("32-true",) if args.dry_run else PRECISIONS  # bf16 on a CPU: tens of seconds a step
    per_config = left * SHARES["throughput"] / (len(MODELS) * len(PRECISIONS) * len(workers))
    warmup, max_steps = (1, 1) if args.dry_run else (3, 40)
    train_figures: dict[str, Any] = results.setdefault("training", {})
    inference: dict[str, Any] = results.setdefault("inference", {})
    for name, model_overrides in MODELS.items():
        with step(train_figures, name) as figures:
            cfg = compose_run([*model_overrides, *data_overrides(args.dry_run)], root)
            codec = build_codec(cfg)
            figures.update(backbone=cfg.backbone.name, input_size=list(cfg.paradigm.input_size))
            if args.dry_run:  # the real model is built (its output size checked), a small one is timed
                build_module(cfg, codec)
                cfg = compose_run([*model_overrides, *data_overrides(True), *DRY_RUN_MODEL], root)
                codec = build_codec(cfg)
            datamodule = build_datamodule(cfg, codec)
            train_set = datamodule.make_train(splits.train_ann, splits.train_images)
            batch_size = 1 if args.dry_run else cfg.loader.batch_size
            figures["batch_size"] = batch_size
            for precision in precisions:
                module = build_module(cfg, codec).to(device)
                for w in workers:
                    with step(figures, f"{precision}_workers_{w}") as entry:
                        entry.update(train_throughput(module, train_set, batch_size, w, precision, device,
                                                      per_config, warmup, max_steps))  # fmt: skip
                del module
        with step(inference, name) as entry:
            module = build_module(cfg, codec).to(device)
            val_set = datamodule.make_val(splits.val_ann, splits.val_images)
            seconds = (args.budget_s - (time.perf_counter() - started)) * SHARES["inference"] / len(MODELS)
            entry.update(inference_throughput(module, cfg, val_set, device, 0.0 if args.dry_run else seconds))
            del module
        if device.type == "cuda":
            torch.cuda.empty_cache()
    overrides = short_run_overrides(args.dry_run, workers[-1])
    with step(results, "short_run") as entry:
        compose_run(overrides, root)  # composes (the dry run stops here)
        entry["overrides"] = overrides
        if not args.dry_run:
            entry.update(short_run(root, overrides, args.budget_s - (time.perf_counter() - started) - 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=300.0, help="the whole check's seconds")
    parser.add_argument(
        "--dry-run", action="store_true", help="CPU, tiny data: check that every step composes"
    )
    parser.add_argument("--tests-summary", default=None, help="the CUDA tests' pytest summary line")
    parser.add_argument("--setup-s", type=float, default=None, help="seconds the install and tests took")
    args = parser.parse_args()
    results: dict[str, Any] = {"check": "aidpose GPU check (issue 25)", "dry_run": args.dry_run,
                               "setup_s": args.setup_s, "cuda_tests": args.tests_summary}  # fmt: skip
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _out_of_time)
    signal.alarm(max(1, int(args.budget_s)))
    with tempfile.TemporaryDirectory(prefix="aidpose-gpu-check-") as tmp:
        try:
            run_checks(args, results, Path(tmp))
            results["status"] = "complete"
        except OutOfTime as err:
            results["status"] = f"stopped at the time limit ({err}): partial figures"
        finally:
            signal.alarm(0)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
