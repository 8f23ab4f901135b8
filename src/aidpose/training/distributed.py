"""Cross-rank code: every rank's predictions without the sampler's padding; the same config on every rank."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch.distributed as dist


def gather_predictions(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-batch prediction dicts, gather them from every rank, drop duplicates.

    The distributed sampler pads the last batch with repeated samples; each instance carries its
    dataset ``index``, so keeping the first occurrence of every index restores the exact
    single-process prediction set, ordered by index.
    """
    local = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]} if outputs else {}
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[dict[str, np.ndarray]] = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(parts, local)
        parts = [p for p in parts if p]
        local = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if not local:
        return {}
    _, first = np.unique(local["index"], return_index=True)
    return {k: v[first] for k, v in local.items()}


def config_hash(config: Any) -> str:
    """SHA-256 of a plain config (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def check_same_config(config: Any) -> None:
    """Stop with an error naming the ranks when the DDP ranks did not compose the same resolved config.

    Ranks > 0 are relaunched from a command line (``aidpose.runtime.relaunch_ddp_children_with_this_job``);
    a lost override (a ``hydra.searchpath``, a ``--config-name``) would otherwise train a different model on
    some ranks without any error.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    hashes: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(hashes, config_hash(config))
    if len(set(hashes)) > 1:
        ranks = [r for r, h in enumerate(hashes) if h != hashes[0]]
        raise RuntimeError(
            f"DDP ranks {ranks} composed another config than rank 0 (config hashes {hashes}): the relaunched "
            "processes lost an override or a --config-name/--config-dir. Compare the ranks' .hydra/config.yaml "
            "and train_ddp_process_<rank>.log, and pass every option on the command line or in the config."
        )
