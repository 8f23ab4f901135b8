"""W&B dashboards: the logger named from the config, offline without an API key, and the image panels."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from aidpose.training.dashboards import WandbImagePanels, has_wandb_api_key, sweep_group
from tests.helpers import compose_config, run_cli


def test_api_key_from_the_environment_or_netrc(tmp_path):
    netrc = tmp_path / "netrc"
    assert has_wandb_api_key({"WANDB_API_KEY": "k"}, netrc)
    assert not has_wandb_api_key({}, netrc)  # no file
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert has_wandb_api_key({}, netrc)
    assert not has_wandb_api_key({"WANDB_BASE_URL": "https://wandb.example.org"}, netrc)  # another host
    assert has_wandb_api_key({"NETRC": str(netrc)})
    netrc.write_text("machine")  # malformed: no key, no crash
    assert not has_wandb_api_key({}, netrc)


def test_group_is_the_sweep_folder_or_the_experiment():
    assert sweep_group("logs/train/multiruns/synthpose_table5_2026-12-01_02-00-00/3", True, "x") == (
        "synthpose_table5_2026-12-01_02-00-00"
    )
    assert sweep_group("logs/train/runs/2026-12-01_02-00-00", False, "synthpose_cpu") == "synthpose_cpu"


def test_logger_name_tags_and_offline_come_from_the_config(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = compose_config(["logger=wandb", "dropper=cutout", "schedule=s2", "seed=3"], tmp_path)
    logger = instantiate(cfg.logger.wandb)
    init = logger._wandb_init  # what wandb.init will get
    assert init["name"] == "hrnet_w18_small-cutout-s2-seed3" and init["group"] == "synthpose_cpu_topdown"
    assert init["tags"] == [
        "backbone=hrnet_w18_small",
        "dropper=cutout",
        "schedule=s2",
        "dataset=synthpose",
        "seed=3",
    ]
    assert logger._offline and init["project"] == "aidpose"
    monkeypatch.setenv("WANDB_API_KEY", "k")
    assert not instantiate(cfg.logger.wandb)._offline
    assert instantiate(cfg.logger.wandb, offline=True)._offline  # forced


def test_panel_options_are_checked():
    with pytest.raises(ValueError, match="every_n_epochs=0 must be ≥ 1"):
        WandbImagePanels(every_n_epochs=0)


@pytest.mark.slow
def test_offline_wandb_sweep_writes_runs_with_image_panels(tmp_path):
    """No API key, no network: each job of a sweep is its own offline run, grouped by the sweep, with panels."""
    wandb_dirs = {
        name: str(tmp_path / "wandb" / name) for name in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR")
    }
    env = {
        **{f"WANDB_{name}": path for name, path in wandb_dirs.items()},
        "WANDB_MODE": None,  # offline must follow from the missing key
        "WANDB_API_KEY": None,
        "NETRC": str(tmp_path / "no-netrc"),
        "HOME": str(tmp_path),
        "WANDB_SILENT": "true",
    }
    sweep = tmp_path / "sweep_dir"
    proc = run_cli(
        "aidpose.train", "-m", "debug=fast", "logger=wandb", "dropper=cutout", "seed=0,1",
        "callbacks.wandb_panels.num_val=2", "callbacks.wandb_panels.num_train=3", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job, seed in (("0", 0), ("1", 1)):
        [run] = (sweep / job / "wandb").glob("offline-run-*")  # one run per job: no bleeding between jobs
        assert f"wandb sync {run}" in proc.stdout
        images = [p.name for p in (run / "files" / "media" / "images" / "panels").glob("*.png")]
        assert sum(name.startswith("val_") for name in images) == 2, images
        assert sum(name.startswith("train_dropped_") for name in images) == 3, images
        record = next(run.glob("run-*.wandb")).read_bytes()  # the run's log: name, group, tags, scalars
        for expected in (f"hrnet_w18_small-cutout-s1-seed{seed}", "sweep_dir", f"seed={seed}", "dropper=cutout",
                         "train/loss_step", "lr-Adam", "val/AP_invis", "train/aid_dropped_kpt_frac"):  # fmt: skip
            assert expected.encode() in record, expected
    assert not (tmp_path / ".netrc").exists() and not (tmp_path / ".config" / "wandb").exists()
