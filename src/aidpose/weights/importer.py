"""Released weights → an aidpose model: read the file safely, place every tensor, check shapes and input.

``import_weights(module, SRC)`` fills a freshly built pose module (its config chooses the architecture) from a
file of one of :data:`aidpose.weights.formats.FORMATS` and returns an :class:`ImportReport`; nothing is left
unsaid: every source tensor is loaded or listed as unused, every model tensor the source did not have is
listed as kept at its initial value, and a partial import is an error unless ``allow_partial``.
``write_checkpoint`` then stores the module as a checkpoint every aidpose command reads.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aidpose.training.checkpoints import load_tensors_only
from aidpose.weights.formats import FORMATS, InputConvention, SourceFormat, detect_format
from aidpose.weights.names import BACKBONES, HEADS, class_path, name_map

STATE_KEYS = ("state_dict", "model")  # where checkpoints keep their tensors (mmpose/HRNet, others)
COUNTER = "num_batches_tracked"  # BatchNorm's step counter: unused with a momentum, absent in some files


@dataclass
class ImportReport:
    """What an import did, tensor by tensor (names in the source's and in aidpose's naming)."""

    source: str
    format: str
    convention: InputConvention
    looks_like: str  # the source's backbone, from telltale tensors
    model: str  # the model's backbone and head
    # aidpose name → source name of every loaded tensor
    loaded: dict[str, str] = field(default_factory=dict)
    # source tensors with no place in the model
    unused: list[str] = field(default_factory=list)
    # model tensors on the output path that the source does not have
    kept_at_init: list[str] = field(default_factory=list)
    # model tensors that cannot change the output, not in the source
    off_path: list[str] = field(default_factory=list)
    # BatchNorm step counters not in the source (set to 0)
    counters_reset: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """Source and model do not correspond one to one."""
        return bool(self.unused or self.kept_at_init)

    def lines(self) -> list[str]:
        """The report as printed by ``python -m aidpose.import_weights``."""
        c = self.convention
        out = [
            f"{self.source}: format {self.format}, {len(self.loaded)} tensors loaded",
            f"input: {c.channel_order}, mean {list(c.mean)}, std {list(c.std)} (0-255 scale), as the config's",
        ]
        if self.unused:
            out.append(f"{len(self.unused)} source tensors unused: {grouped(self.unused)}")
        if self.kept_at_init:
            out.append(
                f"{len(self.kept_at_init)} model tensors kept at their initial values: {grouped(self.kept_at_init)}"
            )
        if self.off_path:
            out.append(
                f"{len(self.off_path)} model tensors off the output path kept at init (they cannot change the output, "
                f"e.g. the last fusions of HRNet branches the head does not read): {grouped(self.off_path)}"
            )
        if self.counters_reset:
            out.append(
                f"{len(self.counters_reset)} BatchNorm num_batches_tracked not in the source: set to 0"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain containers for the checkpoint's ``aidpose_import`` entry."""
        return {
            "source": self.source,
            "format": self.format,
            "input": self.convention.as_dict(),
            "loaded": len(self.loaded),
            "unused": list(self.unused),
            "kept_at_init": list(self.kept_at_init),
            "off_path": list(self.off_path),
            "counters_reset": list(self.counters_reset),
        }


def grouped(names: Iterable[str], limit: int = 8) -> str:
    """``module (n), ...``: names counted per module, at the deepest module level that gives at most ``limit``
    groups (``net.backbone.body.stage4.2.fuse_layers.1 (26), ...``)."""
    paths = [n.split(".")[:-1] or [n] for n in names]
    for depth in range(max(map(len, paths), default=1), 0, -1):
        counts = Counter(".".join(p[:depth]) for p in paths)
        if len(counts) <= limit:
            break
    return ", ".join(f"{module} ({n})" for module, n in counts.items())


def numpy_safe_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` needs to rebuild numpy arrays and scalars (data, never code):
    mmpose's checkpoints keep e.g. the dataset's sigmas as arrays in ``meta``."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core
    reconstruct, scalar = core.multiarray._reconstruct, core.multiarray.scalar
    numeric = (np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64)
    dtypes = {type(np.dtype(t)) for t in (*numeric, np.float16, np.float32, np.float64)}
    # files pickled under numpy 1.x name the functions numpy.core.multiarray.*
    aliases = [(reconstruct, "numpy.core.multiarray._reconstruct"), (scalar, "numpy.core.multiarray.scalar")]
    return [reconstruct, scalar, np.ndarray, np.dtype, *dtypes, *aliases]


def read_source(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a weight file (a DataParallel ``module.`` prefix removed) and its other top-level entries.

    ``.safetensors`` files, or ``torch.load(weights_only=True)`` with numpy arrays allowed: tensors and plain
    containers only, so an untrusted file cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weight file (give a .pth/.pt/.ckpt/.safetensors file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        content: Any = load_file(str(path))
    else:
        content = load_tensors_only(
            path,
            lambda first: (
                f"{path} holds pickled Python objects besides tensors, containers and numpy arrays ({first}). "
                "aidpose never unpickles code from a file: in an environment you trust, re-save only the "
                "weights: torch.save(torch.load(SRC, weights_only=False)['state_dict'], 'weights.pth')"
            ),
            numpy_safe_globals(),
        )
    if not isinstance(content, Mapping):
        raise ValueError(f"{path} holds a {type(content).__name__}, not a state dict or a checkpoint dict")
    state = next((content[k] for k in STATE_KEYS if isinstance(content.get(k), Mapping)), content)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path} holds no tensors (top-level keys {sorted(content)[:8]})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    others = {k: v for k, v in content.items() if state is not content and k not in STATE_KEYS}
    return tensors, others


def source_convention(fmt: SourceFormat, others: Mapping[str, Any], path: str | Path) -> InputConvention:
    """The input the source's network expects: the format's, or an aidpose checkpoint's stored one."""
    if fmt.convention is not None:
        return fmt.convention
    try:
        module = others["aidpose_config"]["paradigm"]["module"]
        return InputConvention("RGB", tuple(module["mean"]), tuple(module["std"]))
    except (KeyError, TypeError):
        raise ValueError(
            f"{path}: an aidpose state dict without its run config ('aidpose_config'): its input normalisation "
            "is unknown; import a checkpoint written by aidpose.train or aidpose.import_weights"
        ) from None


def check_convention(
    source: InputConvention, mean: Iterable[float], std: Iterable[float], path: str | Path
) -> None:
    """Error unless the model normalises its (always RGB) input as the source's network was trained."""
    mean, std = [round(float(v), 3) for v in mean], [round(float(v), 3) for v in std]
    expected_mean, expected_std = [round(v, 3) for v in source.mean], [round(v, 3) for v in source.std]
    if source.channel_order != "RGB" or mean != expected_mean or std != expected_std:
        raise ValueError(
            f"{path} was trained on {source.channel_order} input with mean {expected_mean} and std {expected_std} "
            f"(0-255 scale); this config feeds RGB with paradigm.module.mean={mean} paradigm.module.std={std}. "
            f"Set paradigm.module.mean={expected_mean} paradigm.module.std={expected_std}"
        )


def off_output_path(net: nn.Module, prefix: str = "net.") -> set[str]:
    """Names of the tensors that cannot change ``net``'s output: the parameters a backbone froze as unreachable
    (``TimmBackbone``: e.g. the last fusions of HRNet branches the head does not read) and their modules' buffers."""
    names: set[str] = set()
    for module_name, module in net.named_modules():
        params = list(module.named_parameters(recurse=False))
        if params and not any(p.requires_grad for _, p in params):
            base = f"{prefix}{module_name}." if module_name else prefix
            names |= {base + n for n, _ in params} | {
                base + n for n, _ in module.named_buffers(recurse=False)
            }
    return names


def place_tensors(
    fmt: SourceFormat, names: Iterable[str], net: nn.Module
) -> tuple[dict[str, str], list[str]]:
    """``({aidpose name: source name}, [source names with no aidpose name])`` under ``fmt``'s naming."""
    maps = {}
    if not fmt.native:
        maps = {
            "backbone": name_map(BACKBONES, net.backbone, "backbone"),
            "head": name_map(HEADS, net.head, "head"),
        }
    names = list(names)
    parts = fmt.split(names)
    placed: dict[str, str] = {}
    unplaced = [n for n in names if n not in parts]
    for source_name, (part, inner) in parts.items():
        if fmt.native:
            placed[source_name] = source_name
            continue
        mapped = maps[part].to_aidpose(inner)
        if mapped is None:
            unplaced.append(source_name)
        else:
            placed[f"net.{part}.{mapped}"] = source_name
    return placed, unplaced


def describe_source(tensors: Mapping[str, torch.Tensor]) -> str:
    """What the source's backbone looks like, from telltale tensors (HRNet width, ResNet block type, RSN stages
    and depth)."""
    rsn_blocks = {
        m.groups()
        for n in tensors
        if (m := re.search(r"multi_stage_rsn\.(\d+)\.downsample\.layer3\.(\d+)\.", n))
    }
    if rsn_blocks:
        stages = 1 + max(int(stage) for stage, _ in rsn_blocks)
        depth = {2: "RSN-18", 6: "RSN-50"}.get(sum(stage == "0" for stage, _ in rsn_blocks), "an RSN")
        return depth if stages == 1 else f"{stages}×{depth} ({stages} stages)"
    for name, tensor in tensors.items():
        if re.search(r"(^|\.)stage2\.0\.branches\.0\.0\.conv1\.weight$", name):
            return f"HRNet-W{tensor.shape[0]}"
    if any(re.search(r"(^|\.)layer1\.0\.conv3\.weight$", n) for n in tensors):
        return "a bottleneck ResNet (ResNet-50 or deeper)"
    if any(re.search(r"(^|\.)layer1\.0\.conv2\.weight$", n) for n in tensors):
        return "a basic-block ResNet (ResNet-18/34)"
    return "another backbone"


def likely_cause(
    aidpose_name: str,
    source_shape: tuple[int, ...],
    model_shape: tuple[int, ...],
    model: str,
    num_keypoints: int,
    looks_like: str,
) -> str:
    """Why a source tensor does not fit its place in the model, in the words of the options to change."""
    head_output = re.match(  # the layers that output the maps: HRNet/SimpleBaseline/HigherHRNet, MSPNHead
        r"net\.head\.(final(_quarter|_half)?|predict_layers\.\d+\.conv_layers\.1\.(conv|bn))\.(weight|bias)$",
        aidpose_name,
    )
    if head_output and source_shape[0] != model_shape[0]:
        n, m = source_shape[0], model_shape[0]
        if n == 3 * num_keypoints:
            return (
                f"the source predicts {n} = 3×{num_keypoints} maps: a UDP CombinedTarget (label + offsets) model; "
                "build the model with paradigm/codec=udp_combined (the COCO experiments' target)"
            )
        return (
            f"joint count: the source predicts {n} maps, the model {m} ({num_keypoints} keypoints of the dataset's "
            "layout; bottom-up heads add one tag map per keypoint): import into a config of the source's dataset"
        )
    if aidpose_name.startswith("net.head."):
        return (
            f"head width: {model}'s head was built for other channel counts (its input is the backbone's output; "
            "deconvolution width: head.deconv_channels, bottom-up paradigm.head.deconv_channels)"
        )
    return f"backbone width: the source looks like {looks_like}; the model is {model}: choose the source's backbone"


def match_tensors(
    module: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    fmt: SourceFormat,
    convention: InputConvention,
    source: str | Path,
) -> ImportReport:
    """Where each of ``tensors`` (named in ``fmt``) goes in ``module`` (a pose module with ``net.backbone``,
    ``net.head``, ``mean``, ``std``, ``layout``), checked: input convention and every shape (an error names
    the tensors, both shapes and the likely cause). Shapes only: ``tensors`` may be on the meta device."""
    check_convention(convention, module.mean.flatten().tolist(), module.std.flatten().tolist(), source)
    target = module.state_dict()
    placed, unused = place_tensors(fmt, tensors, module.net)
    unused += [placed.pop(name) for name in [n for n in placed if n not in target]]
    config = getattr(module, "run_config", None) or {}
    model = f"backbone={config.get('backbone', {}).get('name', class_path(module.net.backbone))}"
    looks_like = describe_source(tensors)
    mismatches = [
        f"{src} {tuple(tensors[src].shape)} → {name} {tuple(target[name].shape)}: "
        + likely_cause(
            name,
            tuple(tensors[src].shape),
            tuple(target[name].shape),
            model,
            module.layout.num_keypoints,
            looks_like,
        )
        for name, src in placed.items()
        if tensors[src].shape != target[name].shape
    ]
    if mismatches:
        raise ValueError(
            f"{source} (format {fmt.name}) does not fit this model: {len(mismatches)} tensors differ in shape:\n  "
            + "\n  ".join(mismatches[:6])
            + ("\n  ..." if len(mismatches) > 6 else "")
        )
    off_path = off_output_path(module.net)
    missing = [name for name in target if name not in placed]
    return ImportReport(
        source=str(source),
        format=fmt.name,
        convention=convention,
        looks_like=looks_like,
        model=f"{model}, head {class_path(module.net.head)}",
        loaded=placed,
        unused=sorted(unused),
        kept_at_init=[n for n in missing if n not in off_path and not n.endswith(COUNTER)],
        off_path=[n for n in missing if n in off_path],
        counters_reset=[n for n in missing if n not in off_path and n.endswith(COUNTER)],
    )


def import_weights(
    module: nn.Module, path: str | Path, format_name: str | None = None, allow_partial: bool = False
) -> ImportReport:
    """Load the weight file ``path`` into ``module`` (see :func:`match_tensors`) and return the report. The format
    is ``format_name`` or detected; a partial import (see :attr:`ImportReport.partial`) is an error unless
    ``allow_partial``."""
    if format_name is not None and format_name not in FORMATS:
        raise ValueError(f"--format {format_name}: unknown; choose one of {sorted(FORMATS)}")
    tensors, others = read_source(path)
    fmt = FORMATS[format_name] if format_name else detect_format(tensors, "aidpose_config" in others)
    report = match_tensors(module, tensors, fmt, source_convention(fmt, others, path), path)
    if report.partial and not allow_partial:
        raise ValueError(
            f"{path} (format {fmt.name}) and the model do not correspond one to one:\n  "
            + "\n  ".join(report.lines()[2:])
            + f"\nThe source looks like {report.looks_like}; the model is {report.model}. If that is what you "
            "mean (e.g. an ImageNet backbone under a new head), pass --allow-partial"
        )
    state = module.state_dict()
    for name, src in report.loaded.items():
        state[name] = tensors[src].to(state[name].dtype)
    for name in report.counters_reset:
        state[name] = torch.zeros_like(state[name])
    module.load_state_dict(state)
    return report


def write_checkpoint(module: nn.Module, report: ImportReport, path: str | Path) -> Path:
    """``module`` as an aidpose checkpoint at ``path`` (what ``evaluate ckpt_path=``, ``predict`` and
    ``train init_weights=`` read): its weights, run config and the import report (``aidpose_import``)."""
    import pytorch_lightning as pl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": module.state_dict(),
        "aidpose_config": module.run_config,
        "aidpose_stage": None,
        "aidpose_import": report.as_dict(),
        "pytorch-lightning_version": pl.__version__,
        "epoch": 0,
        "global_step": 0,
    }
    torch.save(checkpoint, path)
    return path
