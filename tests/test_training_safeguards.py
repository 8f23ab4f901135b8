"""Training safeguards: per-rank random streams on 2 gloo processes, the config check across ranks, NaN loss,
untrusted checkpoints, init_weights, the LR drops inside a Trainer run, the DDP relaunch command line."""

from __future__ import annotations

import os
import pickle
import socket
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aidpose.runtime import config_flags
from aidpose.training.checkpoints import load_weights_only, read_checkpoint
from aidpose.training.datamodule import EpochSampler
from aidpose.training.distributed import check_same_config
from tests.helpers import compose_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank: int, port: int, out: str) -> None:
    """One of 2 gloo ranks: the first random draws of its first training items, and a config check."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    sampler = EpochSampler(range(40), shuffle=True, seed=42)  # rank and world size from the process group
    sampler.set_epoch(5)
    draws = [key.rng().random() for key in islice(iter(sampler), 6)]
    check_same_config({"seed": 42, "dropper": "cutout"})
    try:
        check_same_config({"seed": 42, "dropper": "cutout" if rank == 0 else "has"})
        error = ""
    except RuntimeError as err:
        error = str(err)
    dist.destroy_process_group()
    Path(out, f"{rank}.pkl").write_bytes(pickle.dumps({"draws": draws, "error": error}))


def test_ranks_draw_different_streams_a_rerun_repeats_them_and_configs_are_compared(tmp_path):
    # forked (not spawned) gloo ranks: they start in a fraction of a second with this process's imports
    mp.start_processes(_rank_worker, args=(free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    ranks = [pickle.loads((tmp_path / f"{r}.pkl").read_bytes()) for r in range(2)]
    assert ranks[0]["draws"] != ranks[1]["draws"]  # the ranks' augmentation/dropper streams differ
    for rank, result in enumerate(ranks):  # a rerun (here: in this process) repeats them
        sampler = EpochSampler(range(40), num_replicas=2, rank=rank, shuffle=True, seed=42)
        sampler.set_epoch(5)
        assert result["draws"] == [key.rng().random() for key in islice(iter(sampler), 6)]
    for rank in ranks:  # every rank stops, naming the rank that differs
        assert "DDP ranks [1] composed another config than rank 0" in rank["error"]


def test_nan_loss_stops_naming_step_epoch_and_batch(tmp_path):
    from aidpose.builders import build_codec, build_module

    cfg = compose_config(["debug=fast"], tmp_path)
    module = build_module(cfg, build_codec(cfg))
    h, w = module.codec.input_size[1], module.codec.input_size[0]
    heat_w, heat_h = module.codec.heatmap_size
    batch = {
        "image": torch.zeros(2, 3, h, w, dtype=torch.uint8),
        "heatmaps": torch.full((2, 17, heat_h, heat_w), float("nan")),
        "keypoint_weights": torch.ones(2, 17),
    }
    with pytest.raises(FloatingPointError, match=r"nan at global step 0 \(epoch 0, batch 7\)"):
        module.training_step(batch, 7)


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_loader_batch_view_feeds_the_network_as_a_contiguous_batch(tmp_path, channels_last):
    """The loaders' (B, 3, H, W) views of (B, H, W, 3) crops give the same outputs as the contiguous batch, in the
    layout ``paradigm.channels_last`` asks for."""
    from aidpose.builders import build_codec, build_module

    cfg = compose_config(["debug=fast", f"paradigm.channels_last={str(channels_last).lower()}"], tmp_path)
    module = build_module(cfg, build_codec(cfg)).eval()
    w, h = module.codec.input_size
    crops = torch.randint(0, 256, (2, h, w, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    seen = []
    module.net.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        view, contiguous = module(crops.permute(0, 3, 1, 2)), module(crops.permute(0, 3, 1, 2).contiguous())
    torch.testing.assert_close(view, contiguous, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"got shape \(2, 96, 64, 3\).*collate_fn=dataset.collate"):
        module(crops)  # items stacked without the datasets' collate
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert all(x.is_contiguous(memory_format=layout) and x.dtype == torch.float32 for x in seen)


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Path("/etc")}, path)  # any pickled class instance
    with pytest.raises(ValueError, match=r"holds pickled Python objects.*weights_only=True"):
        read_checkpoint(path)


def test_init_weights_loads_the_weights_and_refuses_another_model(tmp_path, tiny_checkpoint):
    from aidpose.builders import build_codec, build_module

    cfg = compose_config(["debug=fast"], tmp_path)
    module = build_module(cfg, build_codec(cfg))
    stored = read_checkpoint(tiny_checkpoint)["state_dict"]
    assert not all(torch.equal(v, stored[k]) for k, v in module.state_dict().items())
    load_weights_only(module, tiny_checkpoint)
    assert all(torch.equal(v, stored[k]) for k, v in module.state_dict().items())
    other = build_module(compose_config(["debug=fast", "backbone=resnet18"], tmp_path), build_codec(cfg))
    with pytest.raises(ValueError, match="does not fit this model"):
        load_weights_only(other, tiny_checkpoint)


@pytest.fixture(scope="module")
def synthpose_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for this module's in-process runs (the debug-sized SynthPose is generated once)."""
    return tmp_path_factory.mktemp("synthpose")


def test_lr_drops_at_the_milestones_inside_a_trainer_run(tmp_path, synthpose_dir):
    """3 epochs of 2 batches accumulated into 1 optimizer step, milestones [1, 2], 1 warm-up step: the LR of every
    optimizer step (the schedule counts optimizer steps, not batches)."""
    import pytorch_lightning as pl

    from aidpose.builders import build_codec, build_datamodule, build_module

    cfg = compose_config(
        ["debug=fast", "schedule.scale=1", "schedule.epochs=3", "schedule.milestones=[1,2]"], tmp_path
    )
    cfg.paths.data_dir = str(synthpose_dir)
    module = build_module(cfg, build_codec(cfg))
    datamodule = build_datamodule(cfg, module.codec)
    seen: list[tuple[int, float]] = []

    class RecordLR(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append((trainer.current_epoch, optimizer.param_groups[0]["lr"]))

    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=3, limit_train_batches=2, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, accumulate_grad_batches=2,
        callbacks=[RecordLR()], num_sanity_val_steps=0, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    lr = cfg.schedule.lr
    full = {1: 0.1 * lr, 2: 0.01 * lr}  # ×0.1 at epochs 1 and 2
    expected = [(0, lr * cfg.schedule.warmup_ratio), (1, full[1]), (2, full[2])]  # step 0: warm-up start
    assert [e for e, _ in seen] == [e for e, _ in expected]  # one optimizer step per epoch
    np.testing.assert_allclose([v for _, v in seen], [v for _, v in expected], rtol=1e-9)


def test_relaunch_keeps_the_config_flags():
    argv = ["-m", "--config-dir", "/x", "--config-name=mine", "-cn", "b", "dropper=cutout,has", "-cp=rel"]
    assert config_flags(argv) == ["--config-dir", "/x", "--config-name=mine", "-cn", "b", "-cp=rel"]


def test_scale_out_knobs_compose_into_the_trainer(tmp_path):
    """num_nodes, SyncBN, mixed precision, accumulation, channels_last and the SLURM requeue switch from config."""
    import inspect

    import pytorch_lightning as pl
    from hydra.utils import instantiate

    cfg = compose_config(
        [
            "trainer=gpu", "trainer.devices=4", "trainer.num_nodes=2", "trainer.precision=bf16-mixed",
            "trainer.accumulate_grad_batches=4", "paradigm.channels_last=true",
            "+trainer.plugins=[{_target_: lightning_fabric.plugins.environments.SLURMEnvironment, auto_requeue: false}]",
        ],
        tmp_path,
    )  # fmt: skip
    trainer_args = set(inspect.signature(pl.Trainer).parameters)
    assert set(cfg.trainer) - {"_target_"} <= trainer_args  # every key reaches the Trainer
    assert (cfg.trainer.num_nodes, cfg.trainer.sync_batchnorm, cfg.trainer.precision) == (
        2,
        True,
        "bf16-mixed",
    )
    assert cfg.trainer.accumulate_grad_batches == 4 and cfg.paradigm.channels_last is True
    (slurm,) = instantiate(cfg.trainer.plugins)
    assert slurm.auto_requeue is False
    cpu = compose_config(["trainer.num_nodes=1"], tmp_path)
    assert set(cpu.trainer) - {"_target_"} <= trainer_args and cpu.trainer.sync_batchnorm is False
