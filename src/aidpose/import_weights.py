"""Released weights → an aidpose checkpoint: ``python -m aidpose.import_weights SRC OUT.ckpt [overrides]``.

The Hydra overrides (as for ``aidpose.train``, e.g. ``experiment=coco/hrnet_w32_256x192``) choose the
architecture; SRC (mmpose 1.x/0.x, UDP-Pose, HRNet, HigherHRNet, timm/torchvision backbone, aidpose) is mapped
into it tensor by tensor (``aidpose.weights``) and OUT.ckpt is written: ``aidpose.evaluate ckpt_path=OUT.ckpt``,
``aidpose.predict`` and ``aidpose.train init_weights=OUT.ckpt`` read it like a checkpoint of ``aidpose.train``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import DictConfig, open_dict

from aidpose.runtime import compose_outside_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from aidpose.weights.formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m aidpose.import_weights",
        description="Convert released pose weights into an aidpose checkpoint.",
    )
    parser.add_argument("source", help="weight file (.pth/.pt/.ckpt/.safetensors)")
    parser.add_argument("output", help="aidpose checkpoint to write (OUT.ckpt)")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides choosing the model, as for aidpose.train"
    )
    formats = "; ".join(f"{f.name}: {f.written_by}" for f in FORMATS.values())
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        help=f"source format (default: detected from its names): {formats}",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="import although source and model do not correspond one to one (the report lists what differs)",
    )
    return parser.parse_intermixed_args(argv)


def compose_run_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``aidpose.train`` composes it (no Hydra run folder), without the
    run's starting weights (ImageNet download, ``init_weights``): the source gives them."""
    from aidpose.builders import skip_backbone_weights

    cfg = compose_outside_cli("train", overrides, Path.cwd(), None, output_dir)
    with open_dict(cfg):
        cfg.task_name = "import_weights"
        skip_backbone_weights(cfg.backbone)  # the source replaces the weights: nothing to download
        # a training start, not part of the model (e.g. a released recipe's mandatory udp_checkpoint)
        cfg.init_weights = None
        cfg.ckpt_path = None
    return cfg


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    source, output = Path(args.source), Path(args.output)
    if not source.is_file():
        raise SystemExit(f"[aidpose] {source}: no such weight file")
    import torch

    from aidpose.builders import build_codec, build_module
    from aidpose.weights import import_weights, write_checkpoint

    cfg = compose_run_config(list(args.overrides), output.resolve().parent)
    torch.manual_seed(cfg.seed)  # tensors the source does not have start as a run with this seed would
    module = build_module(cfg, build_codec(cfg))
    try:
        report = import_weights(module, source, args.format, args.allow_partial)
    except ValueError as err:  # what does not fit and why: no traceback needed
        raise SystemExit(f"[aidpose] {err}") from None
    write_checkpoint(module, report, output)
    for line in report.lines():
        print(f"[aidpose] {line}")
    print(
        f"[aidpose] wrote {output}: aidpose.evaluate ckpt_path={output} / aidpose.train init_weights={output}"
    )


if __name__ == "__main__":
    main()
