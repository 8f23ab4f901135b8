"""Cross-rank gathering of the Lightning code: every rank's predictions, without the sampler's padding."""

from __future__ import annotations

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
