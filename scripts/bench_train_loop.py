"""Lightning's overhead over a bare PyTorch loop on the same model and batches. Prints JSON.

Both loops run the same ``TopDownPoseModule`` (normalise on device, forward, MSE loss, backward,
Adam step, per-step LR schedule) over the same in-memory batches; the difference is Lightning's
own bookkeeping (hooks, logging, progress tracking). Usage: python scripts/bench_train_loop.py
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from aidpose.codecs import UDPHeatmapCodec
from aidpose.models import KeypointMSELoss, PoseNet, TimmBackbone
from aidpose.models.heads import ConvHead
from aidpose.training.schedule import Schedule
from aidpose.training.topdown_module import TopDownPoseModule


class InMemoryBatches(Dataset):
    """Fixed random samples shaped like the top-down pipeline's output."""

    def __init__(
        self, n: int, input_size: tuple[int, int], heatmap_size: tuple[int, int], k: int = 17
    ) -> None:
        g = torch.Generator().manual_seed(0)
        (w, h), (hw, hh) = input_size, heatmap_size
        self.images = torch.randint(0, 256, (n, 3, h, w), generator=g, dtype=torch.uint8)
        self.targets = torch.rand(n, k, hh, hw, generator=g)
        self.k = k

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[i],
            "heatmaps": self.targets[i],
            "keypoint_weights": torch.ones(self.k),
            "visible_count": torch.ones(self.k, dtype=torch.int64),
            "dropped_count": torch.zeros(self.k, dtype=torch.int64),
        }


def make_module(args: argparse.Namespace) -> TopDownPoseModule:
    torch.manual_seed(0)
    net = PoseNet(TimmBackbone(args.backbone, out_index=1, feature_location=""), ConvHead, out_channels=17)
    return TopDownPoseModule(
        net=net,
        loss=KeypointMSELoss(),
        schedule=Schedule(name="s1", epochs=args.epochs, milestones=[args.epochs], lr=1e-3, warmup_steps=10),
        optimizer=torch.optim.Adam,
        layout="coco",
        codec=UDPHeatmapCodec(input_size=(96, 128), heatmap_size=(24, 32), sigma=1.5, blur_kernel=7),
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        test={
            "nms": "oks",
            "nms_thr": 0.9,
            "kpt_score_thr": 0.2,
            "dataset": "coco",
        },
    )


def bare_loop(module: TopDownPoseModule, loader: DataLoader, epochs: int) -> float:
    """The same training step without Lightning: forward, loss, backward, step, LR schedule."""
    from aidpose.training.schedule import lr_factor

    optimizer = torch.optim.Adam(module.parameters(), lr=module.schedule.lr)
    s = module.schedule
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, len(loader), s.scaled_milestones, s.gamma, s.warmup_steps, s.warmup_ratio
        ),
    )
    module.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            loss = module.training_losses(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return time.perf_counter() - start


class TrainTimer(pl.Callback):
    """Times ``fit`` from the start of training to its end (excludes Trainer set-up and teardown)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def lightning_loop(module: TopDownPoseModule, loader: DataLoader, epochs: int) -> tuple[float, float]:
    """(seconds of the training loop, seconds of the whole fit call including set-up)."""
    timer = TrainTimer()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=loader)
    return timer.seconds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="hrnet_w18_small")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data = InMemoryBatches(args.batches * args.batch_size, (96, 128), (24, 32))
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=False, num_workers=0)
    bare_loop(make_module(args), loader, 1)  # warm-up (allocator, kernels)
    bare, lit, fit = [], [], []
    for _ in range(args.repeats):  # interleave to share the machine's drift fairly
        bare.append(bare_loop(make_module(args), loader, args.epochs))
        loop_s, fit_s = lightning_loop(make_module(args), loader, args.epochs)
        lit.append(loop_s)
        fit.append(fit_s)
    steps = args.batches * args.epochs
    result = {
        "model": f"{args.backbone} + 1x1 head, 128x96 input, batch {args.batch_size}",
        "steps_per_run": steps,
        "bare_pytorch_s": round(min(bare), 3),
        "lightning_s": round(min(lit), 3),
        "bare_ms_per_step": round(1000 * min(bare) / steps, 2),
        "lightning_ms_per_step": round(1000 * min(lit) / steps, 2),
        "lightning_overhead_pct": round(100 * (min(lit) - min(bare)) / min(bare), 2),
        "lightning_fit_setup_s": round(min(f - t for f, t in zip(fit, lit, strict=True)), 3),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
