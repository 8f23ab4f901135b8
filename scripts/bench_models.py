"""Training and inference throughput of RSN-50, 2×RSN-50 and HRNet-W32 at 256×192, in one run. Prints JSON.

Each model is built as ``aidpose.train`` builds it for its COCO experiment (``experiment=coco/rsn50_256x192``,
``coco/rsn50_x2_256x192``, ``coco/hrnet_w32_256x192``: backbone, head, codec and loss; random initial weights).
Training: images/s of the module's training step (normalise, forward, the codec's loss on targets its ``encode``
made, backward, Adam step). Inference: images/s of validation's forward pass (flip test by the codec, eval mode)
and decoding to image pixels. CPU always; CUDA too when available. Usage:

    python scripts/bench_models.py [--models rsn50 rsn50_x2 hrnet_w32] [--batch-size 8] [--iterations 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from torch.utils.data import default_collate

EXPERIMENTS = {
    "rsn50": "coco/rsn50_256x192",
    "rsn50_x2": "coco/rsn50_x2_256x192",
    "hrnet_w32": "coco/hrnet_w32_256x192",
}


def build(name: str, output_dir: Path) -> torch.nn.Module:
    """The module of ``name``'s COCO experiment, without pretrained weights (nothing to download)."""
    from aidpose.builders import build_codec, build_module
    from aidpose.import_weights import compose_run_config

    cfg = compose_run_config([f"experiment={EXPERIMENTS[name]}"], output_dir)
    return build_module(cfg, build_codec(cfg))


def batch_of(module: torch.nn.Module, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random crops and the codec's targets of random keypoints inside them, on ``device``."""
    rng = np.random.default_rng(0)
    width, height = module.codec.input_size
    k = module.layout.num_keypoints
    items = []
    for _ in range(batch_size):
        keypoints = rng.uniform([0, 0], [width - 1, height - 1], size=(1, k, 2))
        item = module.codec.encode(keypoints, np.full((1, k), 2))
        item["image"] = rng.integers(0, 256, (3, height, width), dtype=np.uint8)
        items.append(item)
    batch = default_collate(items)
    return {key: value.to(device) for key, value in batch.items()}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(step, images: int, iterations: int, device: torch.device) -> float:
    """``images × iterations / seconds`` of ``step()`` after one warm-up call."""
    step()
    synchronise(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronise(device)
    return images * iterations / (time.perf_counter() - start)


def measure(
    module: torch.nn.Module, batch_size: int, iterations: int, device: torch.device
) -> dict[str, float]:
    module = module.to(device)
    batch = batch_of(module, batch_size, device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    to_image = np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (batch_size, 1, 1))

    def train_step() -> None:
        loss = module.training_losses(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def inference_step() -> None:
        module.codec.decode(module.test_outputs(batch["image"]), to_image)

    module.train()
    train = images_per_second(train_step, batch_size, iterations, device)
    module.eval()
    inference = images_per_second(inference_step, batch_size, iterations, device)
    return {"train_images_per_s": round(train, 2), "inference_images_per_s": round(inference, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(EXPERIMENTS), default=list(EXPERIMENTS))
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step on the CPU")
    parser.add_argument("--cuda-batch-size", type=int, default=32, help="crops per step on CUDA")
    parser.add_argument("--iterations", type=int, default=3, help="timed steps after one warm-up step")
    args = parser.parse_args()
    devices = [("cpu", args.batch_size)]
    if torch.cuda.is_available():
        devices.append(("cuda", args.cuda_batch_size))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            module = build(name, Path(tmp))
            parameters = sum(p.numel() for p in module.net.parameters())
            results[name] = {"experiment": EXPERIMENTS[name], "parameters": parameters}
            for device, batch_size in devices:
                figures = measure(module, batch_size, args.iterations, torch.device(device))
                results[name][device] = {"batch_size": batch_size, **figures}
            module.to("cpu")
    print(
        json.dumps(
            {
                "input": "256x192 (height x width)",
                "cpu_threads": torch.get_num_threads(),
                "iterations": args.iterations,
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "models": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
