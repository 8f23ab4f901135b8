"""Generate-once cache: one folder per parameter set, safe against interrupted runs and concurrent callers.

A dataset is generated into a private temporary folder inside ``cache_root`` and renamed into place
(atomic on one file system) only after its manifest, written last, exists. A folder is reused only if its
manifest matches the requested parameters. An exclusive ``fcntl`` lock per dataset serialises concurrent
callers (e.g. two DDP ranks): the second waits, then finds the finished folder. Temporary folders are
never reused; stale ones left by killed runs are removed by the next caller holding the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from aidpose.data.synthpose.generate import (
    MANIFEST_NAME,
    generate_synthpose,
    generator_params,
    validate_params,
)


def dataset_folder_name(params: dict) -> str:
    """``synthpose-<preset>-<hash>``: the hash covers every generator parameter and the generator version."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return f"synthpose-{params['preset']}-{digest}"


def is_complete(folder: Path, params: dict) -> bool:
    """Whether ``folder`` holds a finished dataset generated with exactly ``params``."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("params") == params


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_synthpose(
    cache_root: str | Path,
    *,
    num_train: int,
    num_val: int,
    seed: int,
    image_size: int = 256,
    preset: str = "default",
) -> Path:
    """The SynthPose folder for these parameters under ``cache_root``, generated on first use."""
    validate_params(num_train=num_train, num_val=num_val, seed=seed, image_size=image_size, preset=preset)
    params = generator_params(
        num_train=num_train, num_val=num_val, seed=seed, image_size=image_size, preset=preset
    )
    cache_root = Path(cache_root)
    name = dataset_folder_name(params)
    final = cache_root / name
    if is_complete(final, params):
        return final
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cache_root: cannot create {cache_root} ({err.strerror or err})") from err
    with _exclusive_lock(cache_root / f".{name}.lock"):
        if is_complete(final, params):
            return final
        for stale in cache_root.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # an incomplete folder not made by us (e.g. a partial copy): never trust it
            shutil.rmtree(final)
        tmp = cache_root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            generate_synthpose(
                tmp, num_train=num_train, num_val=num_val, seed=seed, image_size=image_size, preset=preset
            )
            os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final
