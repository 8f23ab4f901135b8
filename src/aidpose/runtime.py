"""What every command-line entry point needs around its job (as the Lightning-Hydra template's ``utils``).

Where the configs are (checkout or installed wheel), the config choices and command-line keys of the
run, the DDP relaunch under a Hydra multirun, the distributed teardown, and a clean ``os.environ`` per
job. Light to import: torch and Hydra's internals are imported inside the functions.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf, open_dict, read_write

PACKAGE_DIR = Path(__file__).resolve().parent


def config_path() -> str:
    """The Hydra config directory: the copy shipped in the wheel, else the checkout's top-level ``conf/``.

    A wheel carries ``conf/`` as the package data ``aidpose/conf`` (see ``setup.py``); a checkout or an
    editable install reads ``<repo>/conf`` directly, so edits to the configs take effect without a build.
    """
    if (PACKAGE_DIR / "conf" / "train.yaml").is_file():
        return "pkg://aidpose.conf"
    checkout = PACKAGE_DIR.parents[1] / "conf"
    if (checkout / "train.yaml").is_file():
        return str(checkout)
    raise FileNotFoundError(
        f"aidpose's configs are neither in the package ({PACKAGE_DIR / 'conf'}) nor in a checkout ({checkout}): "
        "install a built wheel or run from a checkout (pip install -e .)"
    )


CONFIG_PATH = config_path()
DERIVED_GROUPS = ("dataset_paradigm", "debug_paradigm", "debug_dataset")
"""Config groups ``conf/train.yaml`` picks from other choices (e.g. ``debug_paradigm: ${debug}_${paradigm}``)."""


def run_choices() -> dict[str, Any]:
    """The option each config group used (``hydra.runtime.choices``), without Hydra's own groups and without
    the groups derived from others in ``conf/train.yaml`` (never chosen: :data:`DERIVED_GROUPS`)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = OmegaConf.to_container(HydraConfig.get().runtime.choices)
    return {k: v for k, v in choices.items() if not k.startswith("hydra") and k not in DERIVED_GROUPS}


def command_line_keys() -> set[str]:
    """Keys and groups set on this run's command line (``hydra.overrides.task``), e.g. ``{"test.flip"}``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return set()
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    return {o.key_or_group for o in overrides}


# command-line flags that choose the primary config (Hydra's own, not overrides)
CONFIG_FLAGS = ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd")
# hydra.* overrides that belong to the sweep, not to the job (a child rank is a single run)
SWEEP_ONLY = (
    "hydra.mode",
    "hydra.sweep",
    "hydra.sweeper",
    "hydra/sweeper",
    "hydra.launcher",
    "hydra/launcher",
)


def config_flags(argv: list[str]) -> list[str]:
    """The ``--config-name/--config-path/--config-dir`` flags (and short forms) of a command line."""
    flags: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in CONFIG_FLAGS and i + 1 < len(argv):
            flags += argv[i : i + 2]
            i += 2
            continue
        if argv[i].split("=", 1)[0] in CONFIG_FLAGS:
            flags.append(argv[i])
        i += 1
    return flags


def relaunch_ddp_children_with_this_job() -> None:
    """Make Lightning's DDP child processes compose exactly this job's config, not rerun the whole sweep.

    Lightning relaunches ranks > 0 as ``python -m <entry point> <sys.argv[1:]> hydra.run.dir=<run.dir>``
    (Lightning issue #11300). Under ``-m`` that argv is the whole sweep and ``run.dir`` is not the job's
    folder. Replace argv by the config flags of the command line (``--config-name`` ...), this job's
    ``hydra.*`` overrides that are not about the sweep (e.g. ``hydra.searchpath``) and its task overrides,
    and point ``run.dir`` at the job's output folder. ``check_same_config`` verifies the result at start-up.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    hydra_overrides = [o for o in hydra_cfg.overrides.hydra if not o.lstrip("~+").startswith(SWEEP_ONLY)]
    sys.argv = [sys.argv[0], *config_flags(sys.argv[1:]), *hydra_overrides, *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def job_overrides() -> list[str]:
    """This job's task overrides (``hydra.overrides.task``: its command-line and sweep ``key=value``s)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def teardown_distributed(trainers: Any = (), finished: bool = True) -> None:
    """End a job's DDP processes, finished or failed, so that the next job of a sweep starts clean.

    ``trainers``: a Trainer or a list of them (those of the job's stages). Releases the child ranks
    Lightning launched (``trainer.strategy.launcher.procs``): Lightning's observer
    thread stops watching them (it would kill this process when a failed job's child exits with an error)
    and they are waited for (killed after a timeout when stuck in a collective of a failed job). Then a
    barrier (finished jobs only: a failed rank may never reach it) and the process group's teardown:
    without it gloo often aborts at interpreter exit after a DDP run (environment notes).
    """
    import subprocess

    import torch.distributed as dist

    children = []
    for trainer in trainers if isinstance(trainers, list | tuple) else [trainers]:
        launcher = getattr(trainer.strategy, "launcher", None)
        children += getattr(launcher, "procs", [])
        if getattr(launcher, "procs", None):
            launcher.procs.clear()  # the same list the observer thread polls
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
    for proc in children:
        try:
            proc.wait(timeout=120 if finished else 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def restored_environ() -> Iterator[None]:
    """Run a job and put ``os.environ`` back as it was: DDP sets MASTER_PORT, WORLD_SIZE, ... in this
    process, and the next job of a multirun must start clean."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def compose_outside_cli(
    config_name: str,
    overrides: list[str],
    root: str | Path,
    data_dir: str | Path | None,
    output_dir: str | Path,
) -> Any:
    """Compose ``<CONFIG_PATH>/<config_name>.yaml`` with ``overrides`` as its CLI would, outside a Hydra app
    (tests, ``aidpose.import_weights``, scripts), with ``paths.root``, ``paths.output_dir`` and, unless None,
    ``paths.data_dir`` set."""
    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    if CONFIG_PATH.startswith("pkg://"):
        context = initialize_config_module(CONFIG_PATH[len("pkg://") :], version_base="1.3")
    else:
        context = initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3")
    with context:
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root = str(root)
        cfg.paths.output_dir = str(output_dir)
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    return cfg


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON atomically (a temporary file of this process renamed over ``path``): never half a
    file, and processes writing the same file at once never mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=indent))
    os.replace(tmp, path)
