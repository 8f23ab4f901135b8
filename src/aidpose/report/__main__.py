"""``python -m aidpose.report PATH... [--out DIR] [--baseline KEY=VALUE] [--metrics M ...] [--ignore KEY ...]``.

Reads every training run under the PATHs (a multirun folder, run folders, or a folder of collected runs), prints
the table and writes into ``PATH/report/`` (or ``--out``): ``report.md``, ``report.json``, ``curves.png`` and, for
runs evaluated under test-time occlusion, ``occlusion_<dropper>.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from aidpose.report.runs import TECHNICAL_KEYS, find_run_dirs, read_run
from aidpose.report.summary import TABLE_METRICS, build_report, markdown


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aidpose.report", description=__doc__.split("\n\n")[1])
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="run folder or folder of runs")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: PATH/report; required with 2+ PATHs)"
    )
    parser.add_argument("--baseline", default="dropper=none", metavar="KEY=VALUE",
                        help="each row is compared with its configuration with KEY=VALUE (default: dropper=none)")  # fmt: skip
    parser.add_argument("--metrics", nargs="+", default=list(TABLE_METRICS), metavar="M",
                        help=f"table columns (default: {' '.join(TABLE_METRICS)})")  # fmt: skip
    parser.add_argument("--ignore", nargs="+", default=[], metavar="KEY",
                        help=f"overrides that do not define a configuration, besides {', '.join(TECHNICAL_KEYS)}")  # fmt: skip
    args = parser.parse_args(argv)
    if "=" not in args.baseline:
        parser.error(f"--baseline {args.baseline}: expected KEY=VALUE, e.g. dropper=none")
    if args.out is None and len(args.paths) > 1:
        parser.error("several PATHs: give --out DIR for the report")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run_dirs = list(dict.fromkeys(d.resolve() for p in args.paths for d in find_run_dirs(p)))
    if not run_dirs:
        sys.exit(
            f"no run folder under {' '.join(map(str, args.paths))}: a run folder holds metrics.json or .hydra/ "
            "(python -m aidpose.train writes both)"
        )
    runs = [read_run(d, args.ignore) for d in run_dirs]
    available = {m for r in runs for m in r.metrics}
    unknown = [m for m in args.metrics if m not in available]
    if unknown and available:
        sys.exit(f"--metrics {' '.join(unknown)}: no run has it; the runs have {' '.join(sorted(available))}")
    key, value = args.baseline.split("=", 1)
    report = build_report(runs, args.metrics, (key, value), args.paths, [*TECHNICAL_KEYS, *args.ignore])
    out = args.out or args.paths[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    figures = []
    if report["cells"]:
        from aidpose.report.plots import plot_curves, plot_occlusion

        figures.append(plot_curves(report, out / "curves.png").name)
        for dropper in sorted({d for c in report["cells"] for d in c["occlusion"]}):
            figures.append(plot_occlusion(report, dropper, out / f"occlusion_{dropper}.png").name)
    text = markdown(report, figures)
    (out / "report.md").write_text(text)
    print(text)
    print(f"[aidpose] report.md, report.json and {len(figures)} figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
