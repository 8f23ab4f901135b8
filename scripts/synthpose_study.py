"""The SynthPose AID study (docs/results/synthpose_aid.md): run its cells in protocol order, resume, collect.

    python scripts/synthpose_study.py                     # the setting by the protocol's rule, then every cell
    python scripts/synthpose_study.py --cells E3,E4 --seeds 0 --dry-run
    python scripts/synthpose_study.py --s1-scale 0.2 --num-train 800   # skip the rule (not the protocol's study)

The setting: the protocol's rule (``convergence_gain``) on baseline runs ``S1x<scale>[_n<images>]_seed0`` in
``RESULTS/../convergence/``, candidate (training images, S1 scale) pairs in ``CANDIDATES`` order, stopping at the
first that passes; if none passes, the one with the smallest gain, run as a fixed budget and reported as not
converged. ``convergence.json`` records the measurements and the setting. E1's seed-0 run in the chosen setting is that
convergence run (the same command), copied.

Each (cell, seed) trains with ``python -m aidpose.train`` into ``RUNS/<cell>_seed<k>/`` (git-ignored; a run that
has a ``last.ckpt`` but no ``metrics.json`` is resumed from it), and when it has finished, its small outputs
(``metrics.json``, the per-epoch CSV logs, ``.hydra/config.yaml`` and ``overrides.yaml``,
``aid_dropped_per_joint.json``, ``occlusion.json``) are copied to ``RESULTS/<cell>_seed<k>/``, which is committed.
A cell whose results folder already holds ``metrics.json`` is skipped, so the study survives a move to a new
machine. ``python -m aidpose.report RESULTS`` then writes the tables and curves.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CELLS: dict[str, list[str]] = {
    # Table 5 of the paper (top-down, Cutout)
    "E1": ["schedule=s1", "dropper=none"],
    "E2": ["schedule=s1", "dropper=cutout"],
    "E3": ["schedule=s2", "dropper=none"],
    "E4": ["schedule=s2", "dropper=cutout"],
    "E5": ["schedule=s3", "dropper=cutout"],  # stage 2 starts from E1's final weights of the same seed
    # Table 4, top-down row, at the long schedule
    "S2_random_erasing": ["schedule=s2", "dropper=random_erasing"],
    "S2_has": ["schedule=s2", "dropper=has"],
    "S2_gridmask": ["schedule=s2", "dropper=gridmask"],
}
# What each cell decides, most decisive first (protocol, docs/results/synthpose_aid.md)
ORDER = [("E3", "E4"), ("E1", "E2"), ("E5",), ("S2_random_erasing", "S2_has", "S2_gridmask")]
COMMON = [
    "experiment=synthpose_cpu",
    "logger=csv",
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
]
# (SynthPose training images, S1 scale) the rule tries, in order: the largest training set first, then the
# smallest scale. Only pairs whose S2 run fits a working session are candidates (protocol, amendment of
# 2026-12-01 07:34: S2 <= 2 h with both cores idle); 0.1 at 1,600 images fails on the committed default run.
CANDIDATES = ((1600, 0.2), (800, 0.2), (800, 0.4), (400, 0.2), (400, 0.4))
FULL_TRAIN_SET = 1600  # conf/dataset/synthpose.yaml; runs on it keep their original names (no _n suffix)
GAIN_LIMIT = (
    0.005  # AP gained over the last fifth of the full-LR phase below which the baseline has converged
)
OCCLUSION = ["test.occlusion=cutout", "test.occlusion_levels=[0.1,0.2,0.3,0.4]"]


def planned_runs(cells: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """(cell, seed) in protocol order: groups in ORDER, seeds interleaved within a group."""
    runs = []
    for group in ORDER:
        members = [c for c in group if c in cells]
        runs += [(cell, seed) for seed in seeds for cell in members]
    return runs


def setting_overrides(num_train: int, s1_scale: float) -> list[str]:
    """The overrides of a study setting (training-set size, S1 scale) shared by every cell."""
    size = [] if num_train == FULL_TRAIN_SET else [f"dataset.source.num_train={num_train}"]
    return [*size, f"schedule.scale={s1_scale}"]


def convergence_name(num_train: int, s1_scale: float) -> str:
    size = "" if num_train == FULL_TRAIN_SET else f"_n{num_train}"
    return f"S1x{s1_scale:g}{size}_seed0"


def train_overrides(cell: str, seed: int, num_train: int, s1_scale: float, results: Path) -> list[str]:
    """The command line of a cell; E5 starts stage 2 from E1's final weights when that run is on this machine."""
    overrides = [*COMMON, *CELLS[cell], f"seed={seed}", *setting_overrides(num_train, s1_scale)]
    provenance = results / f"E1_seed{seed}" / "provenance.json"
    if cell == "E5" and provenance.is_file():
        stage1 = Path(json.loads(provenance.read_text())["run_dir"]) / "last.ckpt"
        if stage1.is_file():
            overrides.append(f"schedule.stage1_ckpt={stage1}")
    return overrides


def collect(run_dir: Path, dest: Path, commit: str) -> None:
    """Copy a finished run's small outputs to its results folder, in the layout ``aidpose.report`` reads.

    For S3 (``stage1/``, ``stage2/`` inside the run folder) the curves and dropped shares are stage 2's; the
    top-level ``metrics.json`` is stage 2's and links stage 1.
    """
    from aidpose.report.runs import last_stage

    last = last_stage(run_dir)
    files = [(run_dir / "metrics.json", "metrics.json")]
    files += [(run_dir / ".hydra" / n, f".hydra/{n}") for n in ("config.yaml", "overrides.yaml")]
    files += [(last / "aid_dropped_per_joint.json", "aid_dropped_per_joint.json")]
    files += [(log, str(log.relative_to(last))) for log in last.glob("csv/version_*/metrics.csv")]
    files += [(run_dir / "occlusion" / "occlusion.json", "occlusion.json")]
    for source, name in files:
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "provenance.json").write_text(json.dumps({"commit": commit, "run_dir": str(run_dir)}, indent=1))


def convergence_gain(ap: dict[int, float], first_milestone: int) -> float:
    """Val AP gained over the last fifth of S1's full-LR phase (epochs done 1 … ``first_milestone``).

    Three-epoch means against validation noise: mean AP after epochs m−2, m−1, m minus the mean after
    m−k−2, m−k−1, m−k, with k = round(m / 5) (``ap`` maps epochs done to val AP).
    """
    m = first_milestone
    k = max(1, round(m / 5))
    if m - k - 2 < 1 or any(e not in ap for e in range(m - k - 2, m + 1)):
        raise ValueError(f"need val AP after every epoch from {m - k - 2} to {m} (first milestone {m})")
    late = sum(ap[e] for e in range(m - 2, m + 1)) / 3
    early = sum(ap[e] for e in range(m - k - 2, m - k + 1)) / 3
    return late - early


def first_milestone(run: Path) -> int:
    """S1's first scaled milestone of a collected run (from its stored config)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    schedule = OmegaConf.load(run / ".hydra" / "config.yaml").schedule
    return instantiate(schedule, milestones=list(schedule.milestones)).scaled_milestones[0]


def finished(folder: Path) -> bool:
    """The folder's ``metrics.json`` says the run finished (a failed run writes one too, with its error)."""
    file = folder / "metrics.json"
    return file.is_file() and json.loads(file.read_text()).get("status") == "finished"


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The epoch-end checkpoint an interrupted run resumes from (S3: the later stage's), or None."""
    for candidate in ("stage2/last.ckpt", "stage1/last.ckpt", "last.ckpt"):
        if (run_dir / candidate).is_file():
            return run_dir / candidate
    return None


def run(cmd: list[str], log: Path, dry_run: bool) -> int:
    print("$", " ".join(cmd), flush=True)
    if dry_run:
        return 0
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)


def train_and_collect(
    overrides: list[str], run_dir: Path, dest: Path, commit: str, dry_run: bool, occlusion: bool = False
) -> bool:
    """Train (or resume) one run, evaluate it under test-time occlusion if asked, collect it; True if done."""
    if finished(dest):
        print(f"[study] {dest.name}: done (results in {dest})")
        return True
    log = run_dir.parent / f"{run_dir.name}.log"  # not with_suffix: "S1x0.2_seed0" has a dot
    cmd = [sys.executable, "-m", "aidpose.train", *overrides, f"hydra.run.dir={run_dir}"]
    resume = None if finished(run_dir) else resume_checkpoint(run_dir)
    if resume is not None:
        cmd.append(f"ckpt_path={resume}")
    if not finished(run_dir) and run(cmd, log, dry_run):
        print(f"[study] {dest.name}: FAILED, see {log}")
        return False
    if occlusion:
        evaluate = [
            sys.executable, "-m", "aidpose.evaluate", f"ckpt_path={run_dir / 'last.ckpt'}", *OCCLUSION,
            f"hydra.run.dir={run_dir / 'occlusion'}", "trainer.enable_progress_bar=false",
        ]  # fmt: skip
        if run(evaluate, log, dry_run):
            print(f"[study] {dest.name}: occlusion evaluation FAILED, see {log}")
            return False
    if not dry_run:
        collect(run_dir, dest, commit)
        print(f"[study] {dest.name}: collected into {dest}")
    return True


def decide_setting(measured: list[dict]) -> dict:
    """The protocol's decision from the convergence runs, in CANDIDATES order: the first that passes, else
    (amendment of 2026-12-01 11:55) the one with the smallest gain, run at a fixed budget and reported as not
    converged."""
    passing = [m for m in measured if m["passes"]]
    chosen = passing[0] if passing else min(measured, key=lambda m: m["gain"])
    return {"num_train": chosen["num_train"], "scale": chosen["scale"], "converged": bool(passing)}


def choose_setting(runs: Path, results: Path, commit: str, dry_run: bool) -> tuple[int, float] | None:
    """The protocol's rule: measure CANDIDATES in order until one's baseline S1 run gains < GAIN_LIMIT, then
    ``decide_setting`` (None: the convergence runs are unfinished)."""
    folder = results.parent / "convergence"
    measured = []
    for num_train, scale in CANDIDATES:
        name = convergence_name(num_train, scale)
        overrides = [*COMMON, *CELLS["E1"], "seed=0", *setting_overrides(num_train, scale)]
        trained = train_and_collect(overrides, runs / name, folder / name, commit, dry_run)
        if not trained or not finished(folder / name):  # failed, or a dry run that would train it
            return None
        from aidpose.report.runs import read_run

        m1 = first_milestone(folder / name)
        gain = convergence_gain(read_run(folder / name).curves["val/AP"], m1)
        measured.append(
            {
                "num_train": num_train,
                "scale": scale,
                "first_milestone": m1,
                "gain": gain,
                "passes": gain < GAIN_LIMIT,
            }
        )
        print(
            f"[study] S1 x{scale:g}, {num_train} images: gain {100 * gain:+.2f} AP over the last fifth of the full-LR phase"
        )
        if gain < GAIN_LIMIT:
            break
    setting = decide_setting(measured)
    if not dry_run:
        record = {"limit": GAIN_LIMIT, "runs": measured, "setting": setting}
        (folder / "convergence.json").write_text(json.dumps(record, indent=1))
    if not setting["converged"]:
        print(
            "[study] no candidate passed: the cells run at the candidate closest to passing (not converged)"
        )
    return setting["num_train"], setting["scale"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--s1-scale", type=float, help="skip the protocol's rule and use this schedule.scale")
    parser.add_argument(
        "--num-train", type=int, default=FULL_TRAIN_SET, help="training images with --s1-scale"
    )
    parser.add_argument("--cells", default=",".join(CELLS), help="subset of " + ",".join(CELLS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--runs", type=Path, default=REPO / "logs" / "study", help="run folders (git-ignored)"
    )
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "synthpose_aid" / "runs")
    parser.add_argument("--occlusion-cells", default="E3,E4", help="cells evaluated under test-time Cutout")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args()
    cells = [c for c in args.cells.split(",") if c]
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        parser.error(f"--cells: unknown {unknown}; choose from {list(CELLS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    commit = git.stdout.strip()
    if args.s1_scale:
        setting = (args.num_train, args.s1_scale)
    else:
        setting = choose_setting(args.runs, args.results, commit, args.dry_run)
    if setting is None:
        print("[study] the setting is not decided (convergence runs unfinished): see the protocol")
        return 0 if args.dry_run else 1
    num_train, scale = setting
    failed = []
    for cell, seed in planned_runs(cells, seeds):
        name = f"{cell}_seed{seed}"
        dest = args.results / name
        convergence_run = args.results.parent / "convergence" / convergence_name(num_train, scale)
        if cell == "E1" and seed == 0 and finished(convergence_run) and not finished(dest):
            print(f"[study] {name}: the convergence run {convergence_run.name} (the same command)")
            if not args.dry_run:
                shutil.copytree(convergence_run, dest)
        overrides = train_overrides(cell, seed, num_train, scale, args.results)
        if not train_and_collect(
            overrides, args.runs / name, dest, commit, args.dry_run, cell in args.occlusion_cells.split(",")
        ):
            failed.append(name)
    if failed:
        print(f"[study] failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
