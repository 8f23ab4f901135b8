"""Write ``tests/data/interop/``: reference networks of mmpose, UDP-Pose, HRNet and HigherHRNet, their outputs.

For every model ``aidpose.import_weights`` supports, a reduced-size network built by the reference code itself
with random weights, its checkpoint in that code's own format (``source.pth``), a fixed uint8 input and the
reference outputs (``expected.pt``), and the aidpose overrides of the same architecture (``meta.json``); the
tensor names and shapes of the full-size models (``layouts.json.gz``); and mmpose's top-down inference on the
COCO fixture photos with ground-truth boxes (``mmpose_topdown_coco_mini.json``). ``tests/test_import_weights.py``
checks aidpose against them with no reference library installed.

Run once, in a side environment outside the repository (mmpose 1.3.2 without its compiled parts)::

    python3 -m venv /work/mmpose-env && . /work/mmpose-env/bin/activate
    pip install 'torch>=2.3' 'torchvision>=0.18'
    pip install --no-deps mmpose==1.3.2 mmengine==0.10.7 mmcv-lite==2.1.0
    pip install numpy scipy opencv-python-headless munkres json_tricks addict yapf termcolor rich six yacs \\
        pyyaml matplotlib pycocotools 'setuptools<81' cython wheel
    pip install --no-binary xtcocotools --no-build-isolation --no-deps xtcocotools==1.14.3
    python scripts/make_interop_fixtures.py --udp-pose UDP-Pose --hrnet deep-high-resolution-net.pytorch \\
        --higherhrnet HigherHRNet-Human-Pose-Estimation

with checkouts of HuangJunJie2017/UDP-Pose (branch ``mmpose``), leoxiaobin/deep-high-resolution-net.pytorch and
HRNet/HigherHRNet-Human-Pose-Estimation: their model files are imported from there (``--udp-pose`` etc.).
mmpose's heads that need mmdet or mmcv.ops (none of those used here) get empty stand-ins for those packages;
UDP-Pose's mmpose 0.9 files get the few mmcv 1.x names they import from mmcv 2 / mmengine.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import re
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from torch import nn

REPO = Path(__file__).resolve().parents[1]
NUM_KEYPOINTS = 17
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # ImageNet, RGB, 0-255 scale
TOPDOWN_INPUT, BOTTOMUP_INPUT = (64, 96), (64, 64)  # (width, height) of the fixed inputs

# ---------------------------------------------------------------------------------------------------------
# the reduced HRNet: the reference's structure (4 stages, several modules, every fusion) at small widths


def hrnet_stages(stage1_blocks: int, stage1_channels: int) -> list[dict[str, Any]]:
    """Stage configs (mmpose's keys) of a reduced HRNet: widths 4/6/8/12, two modules in stages 3 and 4."""
    stages = [
        dict(
            num_modules=1,
            num_branches=1,
            block="BOTTLENECK",
            num_blocks=(stage1_blocks,),
            num_channels=(stage1_channels,),
        )
    ]
    for branches, modules in ((2, 1), (3, 2), (4, 2)):
        stages.append(
            dict(
                num_modules=modules,
                num_branches=branches,
                block="BASIC",
                num_blocks=(1,) * branches,
                num_channels=(4, 6, 8, 12)[:branches],
            )
        )
    return stages


def mmpose_extra(stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"stage{i + 1}": dict(s) for i, s in enumerate(stages)}


def renamed_stages(stages: list[dict[str, Any]], block: str, upper: bool) -> dict[str, Any]:
    """The stage configs in another code's spelling: its name for the block type, upper-case keys (yacs)."""
    configs = {}
    for i, stage in enumerate(stages):
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in stage.items() if k != "block"}
        config |= {block: stage["block"], "fuse_method": "SUM"}
        configs[f"stage{i + 1}"] = config
    if upper:
        return {k.upper(): {key.upper(): v for key, v in c.items()} for k, c in configs.items()}
    return configs


def timm_args(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """``backbone.model_args`` of aidpose's TimmBackbone for the same HRNet."""
    return {"stem_width": 64, **renamed_stages(stages, "block_type", upper=False)}


def hrnet_repo_extra(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """``MODEL.EXTRA`` stages of the HRNet and HigherHRNet repositories for the same HRNet."""
    return renamed_stages(stages, "block", upper=True)


def hydra_value(value: Any) -> str:
    """A Python value in Hydra's override grammar (``{a:1,b:[2,3]}``)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return str(value)


# the HRNet and HigherHRNet repositories fix stage 1 at four 64-wide bottlenecks; mmpose lets it shrink
SMALL_HRNET = hrnet_stages(1, 8)
REPO_HRNET = hrnet_stages(4, 64)
SMALL_RESNET = {"base_channels": 4, "timm": {"channels": [4, 8, 16, 32]}}
DECONV = 8  # SimpleBaseline deconvolution width of the reduced models
HIGHER_DECONV = 8  # HigherHRNet deconvolution width of the reduced models


def randomise(
    model: nn.Module,
    seed: int,
    batch: torch.Tensor,
    run: Callable[[nn.Module, torch.Tensor], Any] | None = None,
) -> nn.Module:
    """Random weights and BatchNorm statistics (so that a mix-up of any two tensors changes the output), in eval
    mode. The statistics follow the normalised fixture ``batch`` ``run`` through the network (``model(x)`` by
    default): half its mean and its variance averaged over the layer, each shifted a little; the final layers
    are scaled to outputs of unit spread. Activations stay of unit scale, so float32 rounding stays small. Every
    stored value is a float16 number: the fixtures keep most weights in float16."""
    run = run or call
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / p[0].numel()) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.75)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # the running statistics become those of the one batch
        model.train()
        run(model, batch)
        for norm in norms:  # one scale per layer (no per-channel gain that would amplify rounding)
            norm.momentum = 0.1
            norm.running_mean.mul_(0.5).add_(torch.randn(norm.running_mean.shape, generator=g) * 0.05)
            spread = norm.running_var.mean()
            norm.running_var.copy_(spread * (torch.rand(norm.running_var.shape, generator=g) * 0.2 + 0.9))
            norm.num_batches_tracked.fill_(1000)
        model.eval()
        for name, layer in model.named_modules():  # the references' output convolutions, in order
            if re.search(r"final_layers?(\.\d+)?$", name) and isinstance(layer, nn.Conv2d):
                spread: list[torch.Tensor] = []
                hook = layer.register_forward_hook(lambda m, i, o, out=spread: out.append(o.std()))
                run(model, batch)
                hook.remove()
                layer.weight.div_(spread[0])
                layer.bias.div_(spread[0])
        for t in model.state_dict(keep_vars=True).values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model.eval()


def stored(checkpoint: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """The checkpoint with its floating-point weights in ``dtype``."""

    def cast(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}

    if "state_dict" in checkpoint:
        return {**checkpoint, "state_dict": cast(checkpoint["state_dict"])}
    return cast(checkpoint)


# ---------------------------------------------------------------------------------------------------------
# importing the reference code


class _Absent(types.ModuleType):
    """A stand-in for a package the used models never touch: every name is an inert class."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *args, **kwargs: None})


class _AbsentFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``mmdet`` and ``mmcv.ops`` (compiled, or not installed) as :class:`_Absent` modules."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name == "mmdet" or name.startswith("mmdet.") or name == "mmcv.ops" or name.startswith("mmcv.ops."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _Absent(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def load_file(path: Path, name: str) -> types.ModuleType:
    """The Python file ``path`` imported as module ``name`` (its package must be in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    register(name, module)
    spec.loader.exec_module(module)
    return module


def register(name: str, module: types.ModuleType) -> None:
    """Put ``module`` in sys.modules and on its parent package (``import a.b`` then finds ``a.b``)."""
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def package(name: str, path: Path | None = None, **attrs: Any) -> types.ModuleType:
    """An empty package module ``name`` (its files under ``path`` import one by one) with ``attrs``."""
    module = types.ModuleType(name)
    module.__path__ = [str(path)] if path else []
    module.__dict__.update(attrs)
    register(name, module)
    return module


class _Registry:
    """mmcv 1.x's Registry as the model files use it: a decorator that leaves the class as it is."""

    def register_module(self, *args: Any, **kwargs: Any) -> Callable[[type], type]:
        return lambda cls: cls


def udp_pose_models(root: Path) -> types.ModuleType:
    """UDP-Pose's mmpose 0.9 ``mmpose/models`` files (HRNet, ResNet blocks, the two heads) as package ``udp``."""
    import mmcv.cnn
    import mmengine.model
    import mmengine.runner.checkpoint
    import mmpose.utils

    for name in ("constant_init", "normal_init", "kaiming_init"):  # moved to mmengine in mmcv 2
        setattr(mmcv.cnn, name, getattr(mmengine.model, name))
    package("mmcv.utils.parrots_wrapper", _BatchNorm=nn.modules.batchnorm._BatchNorm)
    package("mmcv.runner", checkpoint=mmengine.runner.checkpoint)
    register("mmcv.runner.checkpoint", mmengine.runner.checkpoint)
    if not hasattr(mmpose.utils, "get_root_logger"):
        mmpose.utils.get_root_logger = lambda *args, **kwargs: logging.getLogger("udp")
    models = root / "mmpose" / "models"
    registry = {k: _Registry() for k in ("BACKBONES", "HEADS", "LOSSES", "POSENETS")}
    package("udp", models)
    package("udp.registry", **registry)
    package("udp.builder", **registry)
    package("udp.backbones", models / "backbones")
    utils = load_file(models / "backbones" / "utils" / "utils.py", "udp.backbones.utils.utils")
    package("udp.backbones.utils", models / "backbones" / "utils", load_checkpoint=utils.load_checkpoint)
    for name in ("base_backbone", "resnet", "hrnet"):
        load_file(models / "backbones" / f"{name}.py", f"udp.backbones.{name}")
    package("udp.keypoint_heads", models / "keypoint_heads")
    for name in ("top_down_simple_head", "bottom_up_higher_resolution_head"):
        load_file(models / "keypoint_heads" / f"{name}.py", f"udp.keypoint_heads.{name}")
    return sys.modules["udp"]


def yacs_config(experiment: Path, extra: dict[str, Any] | None = None) -> Any:
    """An HRNet/HigherHRNet experiment yaml as the yacs CfgNode their model files read, MODEL.EXTRA updated."""
    from yacs.config import CfgNode

    cfg = yaml.safe_load(experiment.read_text())
    cfg.setdefault("MODEL", {}).setdefault("EXTRA", {}).update(extra or {})
    cfg["MODEL"]["NUM_JOINTS"] = NUM_KEYPOINTS
    cfg["MODEL"].setdefault("TAG_PER_JOINT", True)
    cfg["VERBOSE"] = False
    return CfgNode(cfg)


# ---------------------------------------------------------------------------------------------------------
# the reference networks: (network, normalised-input function, state dict in the source's naming)


def rgb_inputs(coco_mini: Path, size: tuple[int, int]) -> torch.Tensor:
    """COCO fixture photos resized to ``size`` = (width, height): uint8 (N, 3, H, W), RGB; two top-down crops,
    one bottom-up image."""
    names = ("000000000785.jpg", "000000196141.jpg")[: 2 if size == TOPDOWN_INPUT else 1]
    images = [
        cv2.cvtColor(cv2.resize(cv2.imread(str(coco_mini / n)), size), cv2.COLOR_BGR2RGB) for n in names
    ]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def torchvision_normalise(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """ToTensor + Normalize(ImageNet) as the HRNet/HigherHRNet repositories and mmpose 0.x feed their networks."""
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=dtype).view(1, 3, 1, 1)
    return (images.to(dtype) / 255 - mean) / std


def mmpose_normalise(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """mmpose 1.x's PoseDataPreprocessor on RGB images: (x - mean) / std on the 0-255 scale."""
    mean, std = (torch.tensor(v, dtype=dtype).view(1, 3, 1, 1) for v in (MEAN, STD))
    return (images.to(dtype) - mean) / std


def call(model: nn.Module, x: torch.Tensor) -> Any:
    return model(x)


def as_list(outputs: Any) -> list[torch.Tensor]:
    return [o.detach().clone() for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


class Composite(nn.Module):
    """backbone → head under the attribute names of a reference detector (names the state dict's prefixes)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, head_name: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.head_name = head_name
        self.add_module(head_name, head)

    def forward(self, x: torch.Tensor) -> Any:
        return getattr(self, self.head_name)(self.backbone(x))


def mmpose_topdown(backbone: dict[str, Any], head: dict[str, Any], input_size: tuple[int, int]) -> nn.Module:
    """An mmpose 1.3.2 ``TopdownPoseEstimator`` (ImageNet normalisation in its data preprocessor, UDP codec)."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS

    init_default_scope("mmpose")
    codec = dict(
        type="UDPHeatmap",
        input_size=input_size,
        heatmap_size=(input_size[0] // 4, input_size[1] // 4),
        sigma=2,
    )
    cfg = dict(
        type="TopdownPoseEstimator",
        data_preprocessor=dict(type="PoseDataPreprocessor", mean=list(MEAN), std=list(STD), bgr_to_rgb=True),
        backbone=backbone,
        head=dict(
            type="HeatmapHead",
            out_channels=NUM_KEYPOINTS,
            loss=dict(type="KeypointMSELoss"),
            decoder=codec,
            **head,
        ),
        test_cfg=dict(flip_test=True, flip_mode="heatmap", shift_heatmap=False),
    )
    return MODELS.build(cfg)


def mmpose_run(model: nn.Module, x: torch.Tensor) -> Any:
    """An mmpose estimator on a normalised batch (``mode="tensor"``: backbone and head)."""
    return model._forward(x)


def mmpose_forward(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    """RGB uint8 → the head's output, through mmpose's own data preprocessor (which takes BGR)."""

    from mmpose.structures import PoseDataSample

    def forward(images: torch.Tensor) -> Any:
        batch = {"inputs": list(images.flip(1)), "data_samples": [PoseDataSample() for _ in images]}
        data = model.data_preprocessor(batch, training=False)
        return model._forward(data["inputs"])

    return forward


def small_mmpose_hrnet(input_size: tuple[int, int]) -> nn.Module:
    """mmpose's top-down HRNet at :data:`SMALL_HRNET` widths with a 1×1 head, codec for ``input_size``."""
    return mmpose_topdown(
        dict(type="HRNet", extra=mmpose_extra(SMALL_HRNET)),
        dict(in_channels=4, deconv_out_channels=None),
        input_size,
    )


# the reduced RSN: mmpose's structure (stages with skips and cross features, residual-steps blocks, every unit's
# predictor) at small widths (mmpose's stem is 64 channels wide whatever res_top_channels says); mmpose's
# argument names and the aidpose overrides of the same network
SMALL_RSN = dict(unit_channels=8, num_stages=2, num_units=2, num_blocks=[1, 1], num_steps=2,
                 res_top_channels=64, expand_times=4)  # fmt: skip
SMALL_RSN_LEVELS = [0, 1, 1, 2]  # per output (stage-major), its Megvii target level


def mmpose_rsn(rsn: dict[str, Any], levels: list[int], input_size: tuple[int, int]) -> nn.Module:
    """An mmpose 1.3.2 ``TopdownPoseEstimator``: ``RSN`` + ``MSPNHead``, MSE on the coarse units and OHKM on
    each stage's last one (its zoo configs' losses), Megvii decoder."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS

    init_default_scope("mmpose")
    units = rsn["num_units"]
    loss = ([dict(type="KeypointMSELoss", use_target_weight=True, loss_weight=0.25)] * (units - 1)
            + [dict(type="KeypointOHKMMSELoss", use_target_weight=True, loss_weight=1.0)]) * rsn["num_stages"]  # fmt: skip
    codec = dict(type="MegviiHeatmap", input_size=input_size,
                 heatmap_size=(input_size[0] // 4, input_size[1] // 4), kernel_size=5)  # fmt: skip
    cfg = dict(
        type="TopdownPoseEstimator",
        data_preprocessor=dict(type="PoseDataPreprocessor", mean=list(MEAN), std=list(STD), bgr_to_rgb=True),
        backbone=dict(type="RSN", **rsn),
        head=dict(
            type="MSPNHead", out_shape=(input_size[1] // 4, input_size[0] // 4), unit_channels=rsn["unit_channels"],
            out_channels=NUM_KEYPOINTS, num_stages=rsn["num_stages"], num_units=units, level_indices=levels,
            loss=loss, decoder=codec,
        ),
        test_cfg=dict(flip_test=True, flip_mode="heatmap", shift_heatmap=False),
    )  # fmt: skip
    return MODELS.build(cfg)


def rsn_overrides(rsn: dict[str, Any], levels: list[int]) -> list[str]:
    """aidpose's overrides of the same RSN: ``backbone=rsn50_x2`` resized, its codec levels and loss per output."""
    last = [u == rsn["num_units"] - 1 for u in range(rsn["num_units"])] * rsn["num_stages"]
    return [
        "backbone=rsn50_x2",
        *(f"backbone.{k}={hydra_value(rsn[m])}" for k, m in (
            ("num_stages", "num_stages"), ("num_blocks", "num_blocks"), ("num_steps", "num_steps"),
            ("unit_channels", "unit_channels"), ("stem_channels", "res_top_channels"),
            ("expand_times", "expand_times"))),
        f"head.num_units={rsn['num_units']}",
        f"paradigm.codec.kernel_sizes={hydra_value([7, 5, 3][: max(levels) + 1])}",
        f"paradigm.codec.level_indices={hydra_value(levels)}",
        f"paradigm.loss.loss_weights={hydra_value([1.0 if x else 0.25 for x in last])}",
        f"paradigm.loss.ohkm={hydra_value([str(x).lower() for x in last])}",
    ]  # fmt: skip


def udp_topdown(udp: types.ModuleType, extra: dict[str, Any], width: int, maps: int) -> nn.Module:
    """UDP-Pose's top-down model: HRNet + TopDownSimpleHead (1×1, ``maps`` outputs)."""
    head = udp.keypoint_heads.top_down_simple_head.TopDownSimpleHead(
        in_channels=width, out_channels=maps, num_deconv_layers=0, extra=dict(final_conv_kernel=1)
    )
    return Composite(udp.backbones.hrnet.HRNet(extra=extra), head, "keypoint_head")


def udp_higherhrnet(udp: types.ModuleType, extra: dict[str, Any], width: int, deconv: int) -> nn.Module:
    """UDP-Pose's HigherHRNet: HRNet + BottomUpHigherResolutionHead as its AID config builds it (aid.py:83-94)."""
    head = udp.keypoint_heads.bottom_up_higher_resolution_head.BottomUpHigherResolutionHead(
        in_channels=width,
        num_joints=NUM_KEYPOINTS,
        tag_per_joint=True,
        extra=dict(final_conv_kernel=1),
        num_deconv_layers=1,
        num_deconv_filters=[deconv],
        num_deconv_kernels=[4],
        num_basic_blocks=4,
        cat_output=[True],
        with_ae_loss=[True, False],
    )
    return Composite(udp.backbones.hrnet.HRNet(extra=extra), head, "keypoint_head")


def fixture(fmt: str, reference: str, model: nn.Module, size: tuple[int, int], overrides: list[str]) -> dict:
    """One fixture: the network, how its source normalises and runs it, its checkpoint in the source's format."""
    checkpoint = {"mmpose": mmpose_checkpoint, "mmpose0": mmpose0_checkpoint}.get(
        fmt, lambda m: m.state_dict()
    )
    return dict(
        format=fmt,
        reference=reference,
        model=model,
        normalise=mmpose_normalise if fmt == "mmpose" else torchvision_normalise,
        run=mmpose_run if fmt == "mmpose" else call,
        input=size,
        checkpoint=checkpoint(model),
        overrides=overrides,
    )


def build_sources(refs: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every fixture (see :func:`fixture`) with the aidpose overrides of the same architecture."""
    udp = udp_pose_models(refs.udp_pose)
    hrnet_models = refs.hrnet / "lib" / "models"
    pose_hrnet = load_file(hrnet_models / "pose_hrnet.py", "ref_pose_hrnet")
    pose_resnet = load_file(hrnet_models / "pose_resnet.py", "ref_pose_resnet")
    higher = load_file(refs.higherhrnet / "lib" / "models" / "pose_higher_hrnet.py", "ref_pose_higher_hrnet")
    hrnet_experiments = refs.hrnet / "experiments" / "coco"
    small_hrnet = ["backbone=hrnet_w32", f"backbone.model_args={hydra_value(timm_args(SMALL_HRNET))}"]
    repo_hrnet = ["backbone=hrnet_w32", f"backbone.model_args={hydra_value(timm_args(REPO_HRNET))}"]
    resnet = [
        "backbone=resnet50",
        f"backbone.model_args={hydra_value(SMALL_RESNET['timm'])}",
        f"head.deconv_channels={DECONV}",
    ]
    bottomup = [
        "paradigm=bottomup",
        f"paradigm.head.deconv_channels={HIGHER_DECONV}",
        "paradigm.head.num_basic_blocks=4",
    ]
    topdown_batch = torchvision_normalise(rgb_inputs(refs.coco_mini, TOPDOWN_INPUT))
    bottomup_batch = torchvision_normalise(rgb_inputs(refs.coco_mini, BOTTOMUP_INPUT))
    small_resnet = mmpose_topdown(
        dict(type="ResNet", depth=50, base_channels=SMALL_RESNET["base_channels"]),
        dict(in_channels=128, deconv_out_channels=(DECONV,) * 3, deconv_kernel_sizes=(4,) * 3),
        TOPDOWN_INPUT,
    )
    higher_deconv = {"NUM_DECONVS": 1, "NUM_CHANNELS": [HIGHER_DECONV], "KERNEL_SIZE": [4],
                     "NUM_BASIC_BLOCKS": 4, "CAT_OUTPUT": [True]}  # fmt: skip
    hrnet_cfg = yacs_config(
        hrnet_experiments / "hrnet" / "w32_256x192_adam_lr1e-3.yaml", hrnet_repo_extra(REPO_HRNET)
    )
    resnet_cfg = yacs_config(
        hrnet_experiments / "resnet" / "res50_256x192_d256x3_adam_lr1e-3.yaml",
        {"NUM_DECONV_FILTERS": [DECONV] * 3},
    )
    higher_cfg = yacs_config(
        refs.higherhrnet / "experiments" / "coco" / "higher_hrnet" / "w32_512_adam_lr1e-3.yaml",
        {**hrnet_repo_extra(REPO_HRNET), "DECONV": higher_deconv},
    )
    return {
        "mmpose_hrnet": fixture(
            "mmpose", "mmpose 1.3.2 TopdownPoseEstimator: HRNet + HeatmapHead (1×1)",
            randomise(small_mmpose_hrnet(TOPDOWN_INPUT), 1, topdown_batch, mmpose_run), TOPDOWN_INPUT, small_hrnet,
        ),
        "mmpose_rsn": fixture(
            "mmpose", "mmpose 1.3.2 TopdownPoseEstimator: RSN (2 stages of 2 units) + MSPNHead",
            randomise(mmpose_rsn(SMALL_RSN, SMALL_RSN_LEVELS, TOPDOWN_INPUT), 8, topdown_batch, mmpose_run),
            TOPDOWN_INPUT, rsn_overrides(SMALL_RSN, SMALL_RSN_LEVELS),
        ),
        "mmpose_resnet": fixture(
            "mmpose", "mmpose 1.3.2 TopdownPoseEstimator: ResNet-50 + HeatmapHead (3 deconvolutions)",
            randomise(small_resnet, 2, topdown_batch, mmpose_run), TOPDOWN_INPUT, resnet,
        ),
        "mmpose0_hrnet": fixture(
            "mmpose0", "UDP-Pose (mmpose 0.9) HRNet + TopDownSimpleHead",
            randomise(udp_topdown(udp, mmpose_extra(SMALL_HRNET), 4, NUM_KEYPOINTS), 3, topdown_batch),
            TOPDOWN_INPUT, small_hrnet,
        ),
        "mmpose0_higherhrnet": fixture(
            "mmpose0", "UDP-Pose (mmpose 0.9) HRNet + BottomUpHigherResolutionHead",
            randomise(udp_higherhrnet(udp, mmpose_extra(SMALL_HRNET), 4, HIGHER_DECONV), 4, bottomup_batch),
            BOTTOMUP_INPUT, [*bottomup, *small_hrnet],
        ),
        "hrnet_hrnet": fixture(
            "hrnet", "deep-high-resolution-net.pytorch pose_hrnet (PoseHighResolutionNet)",
            randomise(pose_hrnet.get_pose_net(hrnet_cfg, is_train=False), 5, topdown_batch),
            TOPDOWN_INPUT, repo_hrnet,
        ),
        "hrnet_simplebaseline": fixture(
            "hrnet", "deep-high-resolution-net.pytorch pose_resnet (PoseResNet, ResNet-50 at 1/16 width)",
            randomise(narrow_pose_resnet(pose_resnet, resnet_cfg), 6, topdown_batch), TOPDOWN_INPUT, resnet,
        ),
        "hrnet_higherhrnet": fixture(
            "hrnet", "HigherHRNet-Human-Pose-Estimation PoseHigherResolutionNet",
            randomise(higher.get_pose_net(higher_cfg, is_train=False), 7, bottomup_batch),
            BOTTOMUP_INPUT, [*bottomup, *repo_hrnet],
        ),
    }  # fmt: skip


def narrow_pose_resnet(pose_resnet: types.ModuleType, cfg: Any) -> nn.Module:
    """SimpleBaseline's PoseResNet with its ResNet stages at 1/16 of their widths (64·2^i is fixed in the
    reference; its forward, layer names and deconvolution head are unchanged)."""
    make_layer = pose_resnet.PoseResNet._make_layer

    def narrow(self: Any, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Module:
        return make_layer(self, block, planes // 16, blocks, stride)

    pose_resnet.PoseResNet._make_layer = narrow
    try:
        return pose_resnet.get_pose_net(cfg, is_train=False)
    finally:
        pose_resnet.PoseResNet._make_layer = make_layer


def coco_dataset_meta() -> dict[str, Any]:
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    return parse_pose_metainfo(dict(from_file="configs/_base_/datasets/coco.py"))


def mmpose_checkpoint(model: nn.Module) -> dict[str, Any]:
    """What mmpose 1.x's released checkpoints hold: ``meta`` (with numpy arrays) and ``state_dict``."""
    import mmengine
    import mmpose

    meta = {
        "mmengine_version": mmengine.__version__,
        "mmpose_version": mmpose.__version__,
        "dataset_meta": {
            k: v for k, v in coco_dataset_meta().items() if k in ("dataset_name", "sigmas", "flip_indices")
        },
    }
    return {"meta": meta, "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}


def mmpose0_checkpoint(model: nn.Module) -> dict[str, Any]:
    """What mmcv 1.x's ``save_checkpoint`` wrote for mmpose 0.x: ``meta`` and ``state_dict``."""
    return {"meta": {"mmpose_version": "0.9.0", "mmcv_version": "1.2.1"}, "state_dict": model.state_dict()}


# ---------------------------------------------------------------------------------------------------------
# full-size layouts: tensor names and shapes of the models the README names


def full_hrnet(width: int) -> dict[str, Any]:
    """mmpose's ``extra`` of the full-size HRNet-W``width`` (HRNet's 1/4/3 modules of 4 blocks per branch)."""
    stages = [dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(4,), num_channels=(64,))]
    for branches, modules in ((2, 1), (3, 4), (4, 3)):
        widths = tuple(width * 2**i for i in range(branches))
        stages.append(dict(num_modules=modules, num_branches=branches, block="BASIC", num_blocks=(4,) * branches,
                           num_channels=widths))  # fmt: skip
    return mmpose_extra(stages)


def full_size_layouts(refs: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Tensor names and shapes of the full-size models, with the aidpose overrides of each architecture."""
    from mmpose.models.backbones import HRNet, ResNet

    udp = sys.modules["udp"]
    pose_hrnet, higher = sys.modules["ref_pose_hrnet"], sys.modules["ref_pose_higher_hrnet"]
    hrnet_cfg = yacs_config(refs.hrnet / "experiments" / "coco" / "hrnet" / "w48_256x192_adam_lr1e-3.yaml")
    higher_cfg = yacs_config(
        refs.higherhrnet / "experiments" / "coco" / "higher_hrnet" / "w48_640_adam_lr1e-3.yaml"
    )
    w32, w48 = full_hrnet(32), full_hrnet(48)
    models = {  # name: (format, reference, overrides, model)
        "mmpose_hrnet_w32": ("mmpose", "mmpose 1.3.2 HRNet-W32 + HeatmapHead", ["backbone=hrnet_w32"],
                             mmpose_topdown(dict(type="HRNet", extra=w32), dict(in_channels=32, deconv_out_channels=None),
                                            (192, 256))),
        "mmpose_hrnet_w48": ("mmpose", "mmpose 1.3.2 HRNet-W48 + HeatmapHead", ["backbone=hrnet_w48"],
                             mmpose_topdown(dict(type="HRNet", extra=w48), dict(in_channels=48, deconv_out_channels=None),
                                            (192, 256))),
        "mmpose_resnet50": ("mmpose", "mmpose 1.3.2 ResNet-50 + HeatmapHead (SimpleBaseline)", ["backbone=resnet50"],
                            mmpose_topdown(dict(type="ResNet", depth=50), dict(in_channels=2048), (192, 256))),
        "udp_hrnet_w32_combined": (
            "mmpose0", "UDP-Pose configs/top_down/hrnet/coco/hrnet_w32_coco_256x192_udp.py (CombinedTarget, 3×17 maps)",
            ["backbone=hrnet_w32"], udp_topdown(udp, w32, 32, 3 * NUM_KEYPOINTS)),
        "udp_higherhrnet_w32": ("mmpose0", "UDP-Pose HRNet-W32 + BottomUpHigherResolutionHead",
                                ["experiment=coco_higherhrnet_w32_512"], udp_higherhrnet(udp, w32, 32, 32)),
        "udp_higherhrnet_w48": ("mmpose0", "UDP-Pose HRNet-W48 + BottomUpHigherResolutionHead",
                                ["experiment=coco_higherhrnet_w48_640"], udp_higherhrnet(udp, w48, 48, 48)),
        "hrnet_w48": ("hrnet", "deep-high-resolution-net.pytorch w48_256x192", ["backbone=hrnet_w48"],
                      pose_hrnet.get_pose_net(hrnet_cfg, is_train=False)),
        "higherhrnet_w48": ("hrnet", "HigherHRNet-Human-Pose-Estimation w48_640", ["experiment=coco_higherhrnet_w48_640"],
                            higher.get_pose_net(higher_cfg, is_train=False)),
        "mmpose_rsn50_x2": ("mmpose", "mmpose 1.3.2 2×RSN-50 + MSPNHead (td-hm_2xrsn50_8xb32-210e_coco-256x192)",
                            ["backbone=rsn50_x2"],
                            mmpose_rsn(dict(unit_channels=256, num_stages=2, num_units=4, num_blocks=[3, 4, 6, 3],
                                            num_steps=4), [0, 1, 2, 3, 1, 2, 3, 4], (192, 256))),
        "mmpose_resnet50_backbone": ("backbone", "mmpose 1.3.2 ResNet-50 alone", ["backbone=resnet50"], ResNet(depth=50)),
        "mmpose_hrnet_w32_backbone": ("backbone", "mmpose 1.3.2 HRNet-W32 alone", ["backbone=hrnet_w32"],
                                      HRNet(extra=w32)),
    }  # fmt: skip
    return {
        name: dict(format=fmt, reference=reference, overrides=overrides,
                   tensors={k: list(v.shape) for k, v in model.state_dict().items()})
        for name, (fmt, reference, overrides, model) in models.items()
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# mmpose's top-down inference on the COCO fixture photos


def coco_boxes(coco_mini: Path) -> dict[str, list[list[float]]]:
    """Ground-truth boxes (x1, y1, x2, y2) per file, clipped as mmpose's CocoDataset clips them (to w-1, h-1),
    on a 1/256 px grid: then x1, y1, x2, y2 and the widths and heights are float32 numbers, so mmpose (float32
    boxes) and aidpose.predict (float32 x, y, w, h) warp the very same crops (random weights turn a one-grey-
    level change of a crop pixel into a visible keypoint shift)."""
    data = json.loads((coco_mini / "test_coco.json").read_text())
    images = {im["id"]: im for im in data["images"]}
    boxes: dict[str, list[list[float]]] = {}
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) == 0:
            continue
        im = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        x1, x2 = np.clip([x, x + w], 0, im["width"] - 1)
        y1, y2 = np.clip([y, y + h], 0, im["height"] - 1)
        box = np.round(np.array([x1, y1, x2, y2]) * 256) / 256
        boxes.setdefault(im["file_name"], []).append(box.tolist())
    return boxes


def mmpose_inference(
    model: nn.Module, coco_mini: Path, boxes: dict[str, list[list[float]]]
) -> dict[str, Any]:
    """``mmpose.apis.inference_topdown`` (UDP crops, flip test, DARK-UDP decoding) on every photo and box."""
    from mmengine.config import Config
    from mmpose.apis import inference_topdown

    model.cfg = Config(
        dict(
            test_dataloader=dict(
                dataset=dict(
                    pipeline=[
                        dict(type="LoadImage"),
                        dict(type="GetBBoxCenterScale"),
                        dict(type="TopdownAffine", input_size=(192, 256), use_udp=True),
                        dict(type="PackPoseInputs"),
                    ]
                )
            )
        )
    )
    model.dataset_meta = coco_dataset_meta()
    keypoints = {}
    for file_name, xyxy in boxes.items():
        results = inference_topdown(model, str(coco_mini / file_name), np.array(xyxy), bbox_format="xyxy")
        keypoints[file_name] = [
            np.concatenate(
                [r.pred_instances.keypoints[0], r.pred_instances.keypoint_scores[0][:, None]], 1
            ).tolist()
            for r in results
        ]
    return keypoints


def unstable_joints(
    model: nn.Module, coco_mini: Path, boxes: dict[str, list[list[float]]], reference: dict[str, Any]
) -> list[list[Any]]:
    """``[file, person, joint]`` of the keypoints that move by more than 0.005 px when the head's weights change
    by 1e-5 (relative, three draws; float32 rounding differs between implementations by about that much):
    random weights make flat maps with near-equal maxima there, where no two implementations need agree; the
    0.05 px comparison is for the others."""
    unstable: set[tuple[str, int, int]] = set()
    for seed in range(3):
        perturbed = copy.deepcopy(model)
        weight = perturbed.head.final_layer.weight
        weight.mul_(1 + 1e-5 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed)))
        moved = mmpose_inference(perturbed, coco_mini, boxes)
        for f in boxes:
            shift = np.linalg.norm(np.array(moved[f])[..., :2] - np.array(reference[f])[..., :2], axis=-1)
            unstable |= {(f, int(p), int(k)) for p, k in zip(*np.nonzero(shift > 0.005), strict=True)}
    return [list(u) for u in sorted(unstable)]


# ---------------------------------------------------------------------------------------------------------


def write(out: Path, sources: dict[str, dict[str, Any]], coco_mini: Path) -> dict[str, Any]:
    """Each fixture's folder. The reference outputs are computed in float64 (the network and its input, normalised
    by the source's own formula): these random networks amplify float32 rounding to ~1e-5, so the tests' 1e-5
    check runs in float64 and the float32 outputs are compared more loosely (``float32_noise`` in meta.json)."""
    summary: dict[str, Any] = {}
    for name, s in sources.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        images = rgb_inputs(coco_mini, s["input"])
        outputs = as_list(s["run"](copy.deepcopy(s["model"]).double(), s["normalise"](images, torch.float64)))
        float32 = as_list(s["run"](s["model"], s["normalise"](images)))
        if s["format"] == "mmpose":  # the convention is mmpose's own data preprocessor's
            through_mmpose = as_list(mmpose_forward(s["model"])(images))
            assert all((a - b).abs().max() < 1e-4 for a, b in zip(through_mmpose, float32, strict=True))
        noise = max(float((a.double() - b).abs().max()) for a, b in zip(float32, outputs, strict=True))
        dtype = torch.float32 if name == "mmpose_hrnet" else torch.float16  # both kinds of released files
        torch.save(stored(s["checkpoint"], dtype), folder / "source.pth")
        # float32 keeps the float64 outputs to ~1e-7, far inside the tests' 1e-5 (half the file)
        torch.save({"input": images, "outputs": [o.float() for o in outputs]}, folder / "expected.pt")
        meta = {k: s[k] for k in ("format", "reference", "overrides")}
        meta |= {"dtype": str(dtype), "outputs": [list(o.shape) for o in outputs], "float32_noise": noise}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        summary[name] = {
            "tensors": len(s["checkpoint"].get("state_dict", s["checkpoint"])),
            "float32_noise": noise,
            "output_std": [round(float(o.std()), 4) for o in outputs],
        }
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--udp-pose", type=Path, required=True, help="checkout of UDP-Pose, branch mmpose")
    parser.add_argument(
        "--hrnet", type=Path, required=True, help="checkout of deep-high-resolution-net.pytorch"
    )
    parser.add_argument(
        "--higherhrnet", type=Path, required=True, help="checkout of HigherHRNet-Human-Pose-Estimation"
    )
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "interop")
    parser.add_argument("--coco-mini", type=Path, default=REPO / "tests" / "data" / "coco_mini")
    args = parser.parse_args(argv)
    sys.meta_path.insert(0, _AbsentFinder())
    torch.set_grad_enabled(False)
    sources = build_sources(args)
    summary = write(args.out, sources, args.coco_mini)
    layouts = full_size_layouts(args)
    # mtime 0: the same layouts give the same file
    (args.out / "layouts.json.gz").write_bytes(gzip.compress(json.dumps(layouts).encode(), mtime=0))
    model = small_mmpose_hrnet((192, 256)).eval()  # the same weights, codec at 256×192
    model.load_state_dict(sources["mmpose_hrnet"]["model"].state_dict())
    boxes = coco_boxes(args.coco_mini)
    keypoints = mmpose_inference(model, args.coco_mini, boxes)
    unstable = unstable_joints(model, args.coco_mini, boxes, keypoints)
    xywh = {f: [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in b] for f, b in boxes.items()}
    image_level = {
        "reference": "mmpose 1.3.2 inference_topdown, UDP 256×192 (flip test, DARK-UDP blur 11), GT boxes "
        "clipped to width-1/height-1 as mmpose's CocoDataset",
        "source": "mmpose_hrnet/source.pth",
        "boxes_xywh": xywh,
        "overrides": [
            *sources["mmpose_hrnet"]["overrides"],
            "paradigm.input_size=[192,256]",
            "paradigm.codec.heatmap_size=[48,64]",
            "paradigm.codec.sigma=2",
            "paradigm.codec.blur_kernel=11",
        ],
        "keypoints": keypoints,
        "unstable_joints": unstable,
    }
    (args.out / "mmpose_topdown_coco_mini.json").write_text(json.dumps(image_level) + "\n")
    summary["layouts"] = {k: len(v["tensors"]) for k, v in layouts.items()}
    joints = sum(len(v) for v in keypoints.values()) * NUM_KEYPOINTS
    summary["image_level"] = {"joints": joints, "unstable_joints": len(unstable)}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
