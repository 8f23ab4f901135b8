"""What thread limits a job gets under a Hydra launcher: torch.get_num_threads() measured inside each job.

    PYTHONPATH=src python scripts/launcher_threads.py -m hydra/launcher=parallel hydra.launcher.n_jobs=2 seed=0,1,2,3

Composes ``conf/train.yaml`` exactly as ``python -m aidpose.train`` does (same launcher, same ``hydra.job.env_set``),
but instead of training, each job prints one JSON line: its process id, the thread variables of its environment and
torch's intra-op thread count, measured after importing torch inside the job as ``aidpose.train`` does.
"""

from __future__ import annotations

import json
import os
import sys

import hydra
from omegaconf import DictConfig

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    import torch

    record = {
        "seed": cfg.seed,
        "pid": os.getpid(),
        "cpu_count": os.cpu_count(),
        **{var: os.environ.get(var) for var in THREAD_VARS},
        "torch_threads": torch.get_num_threads(),
    }
    # one write of the whole line: the jobs share one pipe, and on an unbuffered stream print() writes the text and
    # its newline in two writes (two jobs' records once ran together on one line)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
