"""The CUDA code paths: mixed precision, channels-last, SyncBN, pinned memory with non-blocking copies, persistent
workers, through the real CLI where they are configured. Marked ``cuda``: ``make test`` deselects them (the
suite runs on CPUs); scripts/gpu_check.sh runs them on a GPU (``pytest -m cuda tests/test_cuda.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from tests.helpers import run_cli

pytestmark = pytest.mark.cuda

GPU_LOADER = ["loader.num_workers=2", "loader.pin_memory=true", "loader.persistent_workers=true"]


def _train(tmp_path: Path, *args: str) -> dict:
    run_dir = tmp_path / "run"
    proc = run_cli("aidpose.train", "debug=fast", "trainer=gpu", *GPU_LOADER, *args, f"hydra.run.dir={run_dir}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())


def test_topdown_trains_in_bf16_channels_last_from_a_cached_pinned_loader(tmp_path: Path) -> None:
    metrics = _train(
        tmp_path, "trainer.precision=bf16-mixed", "paradigm.channels_last=true", "loader.cache=memory"
    )
    assert metrics["status"] == "finished" and "AP" in metrics["metrics"]


def test_bottomup_trains_in_fp16_mixed_precision(tmp_path: Path) -> None:
    metrics = _train(tmp_path, "paradigm=bottomup", "trainer.precision=16-mixed", "loader.cache=disk")
    assert metrics["status"] == "finished" and "AP" in metrics["metrics"]


def test_sync_batchnorm_steps_in_a_one_process_group(tmp_path: Path) -> None:
    from aidpose.models import PoseNet, TimmBackbone
    from aidpose.models.heads import ConvHead

    torch.distributed.init_process_group("nccl", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0,
                                         world_size=1)  # fmt: skip
    try:
        net = PoseNet(
            TimmBackbone("hrnet_w18_small", out_index=1, feature_location=""), ConvHead, num_keypoints=17
        )
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net).cuda().to(memory_format=torch.channels_last)
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in net.modules())
        x = torch.randn(4, 3, 128, 96, device="cuda").contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net(x)
        out.float().square().mean().backward()
        assert out.shape == (4, 17, 32, 24) and torch.isfinite(out.float()).all()
    finally:
        torch.distributed.destroy_process_group()


def test_pinned_batches_copy_to_the_gpu_without_blocking(coco_mini: Path) -> None:
    from aidpose.codecs import UDPHeatmapCodec
    from aidpose.data.topdown import TopDownDataset

    codec = UDPHeatmapCodec(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)
    dataset = TopDownDataset(coco_mini / "test_coco.json", coco_mini, train=False, codec=codec)
    batch = next(
        iter(
            DataLoader(
                dataset, batch_size=4, num_workers=2, pin_memory=True, persistent_workers=True,
                collate_fn=dataset.collate,
            )
        )
    )  # fmt: skip
    assert batch["image"].is_pinned() and batch["heatmaps"].is_pinned()
    assert batch["image"].shape == (4, 3, 256, 192)  # the channels-last view of the crops, pinned
    on_gpu = {k: v.to("cuda", non_blocking=True) for k, v in batch.items()}
    torch.cuda.synchronize()
    for key, value in batch.items():
        assert torch.equal(on_gpu[key].cpu(), value)
