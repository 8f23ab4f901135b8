"""The SynthPose AID studies: run a study's cells in protocol order, resume, collect.

    python scripts/synthpose_study.py                     # study 1 (docs/results/synthpose_aid.md)
    python scripts/synthpose_study.py --study synthpose_aid_converged   # study 2: full schedules, converged baseline
    python scripts/synthpose_study.py --cells E3,E4 --seeds 0 --dry-run
    python scripts/synthpose_study.py --s1-scale 0.2 --num-train 800   # skip the rule (not the protocol's study)

A study (``STUDIES``, each fixed by its ``docs/results/<study>/protocol.md``) is one configuration of the same
steps. The setting: the protocol's rule on baseline runs ``S1x<scale>[_n<images>]_seed0`` in
``RESULTS/../convergence/``, candidate (training images, S1 scale) pairs in the study's order. Where the study
limits an S2 run's time, each candidate is first timed (``RESULTS/../timing/``: a warm-up run, then 10 and 20
epochs) and skipped if its S2 run would not fit. The first candidate that converges is the setting; if none does,
study 1 runs the one with the smallest gain as a fixed budget (reported as not converged) and study 2 stops.
``convergence.json`` records the measurements and the setting. E1's seed-0 run in the chosen setting is that
convergence run (the same command), copied.

Each (cell, seed) trains with ``python -m aidpose.train`` into ``RUNS/<cell>_seed<k>/`` (git-ignored; a run that
has a ``last.ckpt`` but no ``metrics.json`` is resumed from it), and when it has finished, its small outputs
(``metrics.json``, the per-epoch CSV logs, ``.hydra/config.yaml`` and ``overrides.yaml``,
``aid_dropped_per_joint.json``, ``occlusion.json``, ``train_set_eval.json``) are copied to
``RESULTS/<cell>_seed<k>/``, which is committed. A cell whose results folder already holds ``metrics.json`` is
skipped, so the study survives a move to a new machine; with ``--claim`` several processes share one study (each
run is claimed by ``mkdir RUNS/<name>.claim``). ``python -m aidpose.report RESULTS`` then writes the tables and
curves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
# What each cell decides, most decisive first (both protocols)
ORDER = [("E3", "E4"), ("E1", "E2"), ("E5",), ("S2_random_erasing", "S2_has", "S2_gridmask")]
FULL_TRAIN_SET = 1600  # conf/dataset/synthpose.yaml; runs on it keep their original names (no _n suffix)
GAIN_LIMIT = (
    0.005  # AP gained over the last fifth of the full-LR phase below which the baseline has converged
)
OCCLUSION = ["test.occlusion=cutout", "test.occlusion_levels=[0.1,0.2,0.3,0.4]"]
TIMING_EPOCHS = (10, 20)  # study 2's timing runs: one and two blocks of (10 epochs + one validation)
TIMING_THREADS = "2"  # study 2's timing runs use both cores (protocol), whatever the other runs use


@dataclass(frozen=True)
class Study:
    """What a study's protocol (``docs/results/<name>/protocol.md``) fixes for the driver."""

    name: str
    val_every: int  # epochs between validations (every run, convergence rule included)
    # (SynthPose training images, S1 scale) the convergence rule tries, in order
    candidates: tuple[tuple[int, float], ...]
    fallback: bool  # no candidate converges: run the closest as a fixed budget (True) or stop (False)
    s2_limit_s: float | None = None  # a candidate's S2 run must fit this, from timing runs (None: not timed)
    train_set_eval: bool = False  # evaluate every finished run on its own training images

    @property
    def common(self) -> list[str]:
        """The overrides every run of the study shares."""
        return [
            "experiment=synthpose_cpu",
            "logger=csv",
            f"trainer.check_val_every_n_epoch={self.val_every}",
            "trainer.enable_progress_bar=false",
        ]

    @property
    def folder(self) -> Path:
        return REPO / "docs" / "results" / self.name


STUDIES = {
    # Study 1 (protocol of 2026-12-01). Candidates: the largest training set first, then the smallest scale; only
    # pairs whose S2 run fits a working session (amendment of 2026-12-01 07:34: S2 <= 2 h with both cores idle);
    # 0.1 at 1,600 images fails on the committed default run. No candidate converged: fixed budget (amendment
    # of 2026-12-01 11:55).
    "synthpose_aid": Study(
        "synthpose_aid",
        val_every=1,
        candidates=((1600, 0.2), (800, 0.2), (800, 0.4), (400, 0.2), (400, 0.4)),
        fallback=True,
    ),
    # Study 2 (protocol of 2026-12-03): the paper's schedules unscaled; N the largest training set whose S2 run
    # fits 60 minutes with both cores and whose S1 baseline converges; if none, it stops.
    "synthpose_aid_converged": Study(
        "synthpose_aid_converged",
        val_every=10,
        candidates=((400, 1.0), (200, 1.0), (100, 1.0)),
        fallback=False,
        s2_limit_s=3600.0,
        train_set_eval=True,
    ),
}


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


def train_overrides(
    study: Study, cell: str, seed: int, num_train: int, s1_scale: float, results: Path
) -> list[str]:
    """The command line of a cell; E5 starts stage 2 from E1's final weights when that run is on this machine."""
    overrides = [*study.common, *CELLS[cell], f"seed={seed}", *setting_overrides(num_train, s1_scale)]
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
    files += [(run_dir / "train_set_eval" / "metrics.json", "train_set_eval.json")]
    for source, name in files:
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "provenance.json").write_text(json.dumps({"commit": commit, "run_dir": str(run_dir)}, indent=1))


def convergence_gain(ap: dict[int, float], first_milestone: int, every: int = 1) -> float:
    """Val AP gained over the last fifth of S1's full-LR phase (epochs done 1 … ``first_milestone``).

    Three-evaluation means against validation noise, on the grid of evaluations every ``every`` epochs: mean AP
    after epochs m−2e, m−e, m minus the mean after m−k−2e, m−k−e, m−k, with k = e·max(1, round(m / 5e)) (``ap``
    maps epochs done to val AP; e = 1: epochs m−2 … m against m−k−2 … m−k, k = round(m / 5)).
    """
    m, e = first_milestone, every
    k = e * max(1, round(m / (5 * e)))
    late, early = [m - 2 * e, m - e, m], [m - k - 2 * e, m - k - e, m - k]
    if early[0] < 1 or any(x not in ap for x in early + late):
        raise ValueError(
            f"need val AP after epochs {early + late} (first milestone {m}, every {e} epochs from {early[0]} to {m})"
        )
    return sum(ap[x] for x in late) / 3 - sum(ap[x] for x in early) / 3


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


def claim(run_dir: Path) -> bool:
    """Claim a run for this process (``mkdir RUNS/<name>.claim``, atomic); False if another process has it."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    marker = run_dir.parent / f"{run_dir.name}.claim"
    try:
        marker.mkdir()
    except FileExistsError:
        return (marker / str(os.getpid())).exists()
    (marker / str(os.getpid())).touch()
    return True


def run(cmd: list[str], log: Path, dry_run: bool, threads: str | None = None) -> int:
    """Run a command with its output appended to ``log``; ``threads`` sets OMP_NUM_THREADS for it alone."""
    print("$", " ".join(cmd), flush=True)
    if dry_run:
        return 0
    log.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | ({"OMP_NUM_THREADS": threads} if threads else {})
    with log.open("a") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)


def train_set_overrides(run_dir: Path) -> list[str]:
    """``aidpose.evaluate`` overrides that score a SynthPose run's checkpoint on its own training images."""
    from omegaconf import OmegaConf

    from aidpose.data.synthpose import ensure_synthpose

    source = OmegaConf.load(run_dir / ".hydra" / "config.yaml").dataset.source
    data_dir = Path(os.environ.get("AIDPOSE_DATA_DIR", REPO / "data"))
    params = {k: source[k] for k in ("num_train", "num_val", "seed", "image_size", "preset")}
    root = ensure_synthpose(data_dir / "synthpose", **params)
    split = ["annotations/person_keypoints_train.json", "images/train"]
    return ["dataset=coco", f"dataset.source.root={root}"] + [
        f"dataset.source.{phase}_{kind}={value}"
        for phase in ("train", "val")
        for kind, value in zip(("ann", "images"), split, strict=True)
    ]


def train_and_collect(
    overrides: list[str],
    run_dir: Path,
    dest: Path,
    commit: str,
    dry_run: bool,
    occlusion: bool = False,
    train_set_eval: bool = False,
    threads: str | None = None,
) -> bool:
    """Train (or resume) one run, evaluate it under test-time occlusion and on its training images if asked,
    collect it; True if done."""
    if finished(dest):
        print(f"[study] {dest.name}: done (results in {dest})")
        return True
    log = run_dir.parent / f"{run_dir.name}.log"  # not with_suffix: "S1x0.2_seed0" has a dot
    cmd = [sys.executable, "-m", "aidpose.train", *overrides, f"hydra.run.dir={run_dir}"]
    resume = None if finished(run_dir) else resume_checkpoint(run_dir)
    if resume is not None:
        cmd.append(f"ckpt_path={resume}")
    if not finished(run_dir) and run(cmd, log, dry_run, threads):
        print(f"[study] {dest.name}: FAILED, see {log}")
        return False
    evaluations = {"occlusion": OCCLUSION} if occlusion else {}
    if train_set_eval and not dry_run:
        evaluations["train_set_eval"] = train_set_overrides(run_dir)
    from aidpose.report.runs import last_stage

    for folder, extra in evaluations.items():
        if finished_evaluation(run_dir / folder):
            continue
        evaluate = [
            sys.executable, "-m", "aidpose.evaluate", f"ckpt_path={last_stage(run_dir) / 'last.ckpt'}", *extra,
            f"hydra.run.dir={run_dir / folder}", "trainer.enable_progress_bar=false",
        ]  # fmt: skip
        if run(evaluate, log, dry_run):
            print(f"[study] {dest.name}: {folder} evaluation FAILED, see {log}")
            return False
    if not dry_run:
        collect(run_dir, dest, commit)
        print(f"[study] {dest.name}: collected into {dest}")
    return True


def finished_evaluation(folder: Path) -> bool:
    """An ``aidpose.evaluate`` run folder holds its ``metrics.json`` (written only when it finished)."""
    return (folder / "metrics.json").is_file()


def s2_estimate(t10: float, t20: float) -> float:
    """Study 2's estimate of an S2 run's seconds from the 10- and 20-epoch timing runs: t10 + 41·(t20 − t10)."""
    return t10 + 41 * (t20 - t10)


def time_candidate(study: Study, num_train: int, runs: Path, folder: Path, commit: str, dry_run: bool):
    """Study 2's rule (a): time a candidate (warm-up, 10 and 20 epochs); the measurement, or None if unfinished."""
    base = [*study.common, *CELLS["E1"], "seed=0", *setting_overrides(num_train, 1.0)]
    warmup = [*base, "schedule.epochs=1", "schedule.milestones=[]", "trainer.limit_train_batches=1",
              "trainer.limit_val_batches=1", "trainer.check_val_every_n_epoch=1"]  # fmt: skip
    if not train_and_collect(
        warmup, runs / f"warmup_n{num_train}", folder / f"warmup_n{num_train}", commit, dry_run
    ):
        return None
    seconds = {}
    for epochs in TIMING_EPOCHS:
        name = f"n{num_train}_e{epochs}"
        timed = [*base, f"schedule.epochs={epochs}", "schedule.milestones=[]"]
        trained = train_and_collect(
            timed, runs / f"timing_{name}", folder / name, commit, dry_run, threads=TIMING_THREADS
        )
        if not trained or not finished(folder / name):  # failed, or a dry run that would train it
            return None
        seconds[epochs] = json.loads((folder / name / "metrics.json").read_text())["seconds"]
    estimate = s2_estimate(seconds[10], seconds[20])
    fits = estimate <= study.s2_limit_s
    print(f"[study] {num_train} images: S2 estimated at {estimate:.0f} s (limit {study.s2_limit_s:.0f} s)")
    return {"num_train": num_train, "t10_s": seconds[10], "t20_s": seconds[20], "s2_estimate_s": estimate,
            "limit_s": study.s2_limit_s, "fits": fits}  # fmt: skip


def decide_setting(measured: list[dict], fallback: bool = True) -> dict | None:
    """The protocol's decision from the convergence runs, in candidate order: the first that passes, else (study
    1, amendment of 2026-12-01 11:55) the one with the smallest gain, run at a fixed budget and reported as not
    converged, or (study 2) None: the study stops."""
    passing = [m for m in measured if m["passes"]]
    if not passing and not (fallback and measured):
        return None
    chosen = passing[0] if passing else min(measured, key=lambda m: m["gain"])
    return {"num_train": chosen["num_train"], "scale": chosen["scale"], "converged": bool(passing)}


UNDECIDED = "undecided"  # choose_setting: the convergence or timing runs are unfinished


def choose_setting(study: Study, runs: Path, results: Path, commit: str, dry_run: bool):
    """The protocol's rule: for each candidate in order, time it where the study limits S2's time (skip it if
    S2 would not fit), then train its baseline S1 run until one gains < GAIN_LIMIT; then ``decide_setting``.
    Returns (training images, S1 scale), None if the study stops without a setting, or UNDECIDED."""
    folder = results.parent / "convergence"
    measured, timing = [], []
    for num_train, scale in study.candidates:
        if study.s2_limit_s is not None:
            timed = time_candidate(
                study, num_train, runs / "timing", results.parent / "timing", commit, dry_run
            )
            if timed is None:
                return UNDECIDED
            timing.append(timed)
            if not dry_run:
                (results.parent / "timing" / "timing.json").write_text(json.dumps(timing, indent=1))
            if not timed["fits"]:
                continue
        name = convergence_name(num_train, scale)
        overrides = [*study.common, *CELLS["E1"], "seed=0", *setting_overrides(num_train, scale)]
        trained = train_and_collect(
            overrides, runs / name, folder / name, commit, dry_run, train_set_eval=study.train_set_eval
        )
        if not trained or not finished(folder / name):  # failed, or a dry run that would train it
            return UNDECIDED
        from aidpose.report.runs import read_run

        m1 = first_milestone(folder / name)
        gain = convergence_gain(read_run(folder / name).curves["val/AP"], m1, study.val_every)
        passes = gain < GAIN_LIMIT
        measured.append(
            {"num_train": num_train, "scale": scale, "first_milestone": m1, "gain": gain, "passes": passes}
        )
        print(
            f"[study] S1 x{scale:g}, {num_train} images: gain {100 * gain:+.2f} AP over the last fifth of the full-LR phase"
        )
        if passes:
            break
    setting = decide_setting(measured, study.fallback)
    if not dry_run:
        folder.mkdir(parents=True, exist_ok=True)
        record = {"limit": GAIN_LIMIT, "runs": measured, "setting": setting}
        (folder / "convergence.json").write_text(json.dumps(record, indent=1))
    if setting is None:
        print("[study] no candidate passed: the study stops (protocol), see convergence.json and timing.json")
        return None
    if not setting["converged"]:
        print(
            "[study] no candidate passed: the cells run at the candidate closest to passing (not converged)"
        )
    return setting["num_train"], setting["scale"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", default="synthpose_aid", choices=sorted(STUDIES))
    parser.add_argument("--s1-scale", type=float, help="skip the protocol's rule and use this schedule.scale")
    parser.add_argument(
        "--num-train", type=int, default=FULL_TRAIN_SET, help="training images with --s1-scale"
    )
    parser.add_argument("--cells", default=",".join(CELLS), help="subset of " + ",".join(CELLS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", type=Path, help="run folders (git-ignored; default logs/<study>)")
    parser.add_argument("--results", type=Path, help="collected runs (default docs/results/<study>/runs)")
    parser.add_argument("--occlusion-cells", default="E3,E4", help="cells evaluated under test-time Cutout")
    parser.add_argument("--claim", action="store_true", help="share the study with other processes")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args()
    study = STUDIES[args.study]
    runs = args.runs or REPO / "logs" / ("study" if study.name == "synthpose_aid" else study.name)
    results = args.results or study.folder / "runs"
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
        setting = choose_setting(study, runs, results, commit, args.dry_run)
    if setting == UNDECIDED:
        print("[study] the setting is not decided (convergence or timing runs unfinished): see the protocol")
        return 0 if args.dry_run else 1
    if setting is None:
        return 0
    num_train, scale = setting
    failed = []
    for cell, seed in planned_runs(cells, seeds):
        name = f"{cell}_seed{seed}"
        dest = results / name
        if args.claim and not finished(dest) and not args.dry_run and not claim(runs / name):
            print(f"[study] {name}: claimed by another process")
            continue
        convergence_run = results.parent / "convergence" / convergence_name(num_train, scale)
        if cell == "E1" and seed == 0 and finished(convergence_run) and not finished(dest):
            print(f"[study] {name}: the convergence run {convergence_run.name} (the same command)")
            if not args.dry_run:
                shutil.copytree(convergence_run, dest)
        overrides = train_overrides(study, cell, seed, num_train, scale, results)
        occlusion = cell in args.occlusion_cells.split(",")
        if not train_and_collect(
            overrides, runs / name, dest, commit, args.dry_run, occlusion, study.train_set_eval
        ):
            failed.append(name)
    if failed:
        print(f"[study] failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
