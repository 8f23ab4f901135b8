"""timm backbones that return one feature map for a heatmap head."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from omegaconf import OmegaConf
from timm.models import clean_state_dict
from torch import nn


class TimmBackbone(nn.Module):
    """A timm model built with ``features_only`` that returns the feature map at ``out_index``.

    Args:
        name: timm model name (resnet18, resnet50, hrnet_w18_small, hrnet_w32, hrnet_w48, ...).
        out_index: which of the model's feature levels feeds the head (ResNet: 4 = stride 32 for
            SimpleBaseline; HRNet: 1 = the stride-4 highest-resolution branch).
        pretrained: load timm's (ImageNet) weights from its hub; needs network access or a warm cache.
        weights: path to a local checkpoint (a timm/torchvision state dict, or a Lightning checkpoint
            whose ``state_dict`` holds ``net.backbone.*`` keys) loaded after construction.
        feature_location: timm's HRNet option; "" gives the raw branch outputs a pose head wants.
        model_args: further ``timm.create_model`` arguments, e.g. a reduced HRNet's ``stage1``..``stage4``
            configs or a ResNet's ``layers``/``channels`` (the interop tests' small reference networks).
    """

    def __init__(
        self,
        name: str,
        out_index: int,
        pretrained: bool = False,
        weights: str | None = None,
        feature_location: str | None = None,
        model_args: dict | None = None,
    ) -> None:
        super().__init__()
        kwargs = dict(model_args or {})
        if OmegaConf.is_config(model_args):  # plain containers: timm copies and compares the stage configs
            kwargs = OmegaConf.to_container(model_args)
        if feature_location is not None:
            kwargs["feature_location"] = feature_location
        try:
            self.body = timm.create_model(
                name, pretrained=pretrained, features_only=True, out_indices=(out_index,), **kwargs
            )
        except (RuntimeError, OSError) as err:  # OSError: hub unreachable / not in the local cache
            if pretrained:
                raise RuntimeError(
                    f"backbone.pretrained=true could not fetch timm weights for {name!r} ({err}). "
                    "Without network access pass a local file with backbone.weights=PATH instead."
                ) from err
            raise
        self.out_channels: int = self.body.feature_info.channels()[-1]
        self.stride: int = self.body.feature_info.reduction()[-1]
        freeze_unreachable_parameters(self.body)
        if weights is not None:
            load_backbone_weights(self.body, weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[-1]


def freeze_unreachable_parameters(body: nn.Module) -> int:
    """Freeze parameters that cannot influence the returned feature map; return how many.

    HRNet computes every branch at every stage, but a pose head reads one branch: the last fusion
    layers of the other branches never receive a gradient, which DDP rejects ("parameters that were
    not used in producing the loss"). A probe backward pass (eval mode: running stats untouched)
    finds them once; ``requires_grad=False`` keeps them in the state dict, out of DDP's buckets.
    """
    was_training = body.training
    body.eval()
    body.zero_grad(set_to_none=True)
    body(torch.zeros(1, 3, 64, 64))[-1].sum().backward()
    unreachable = [p for p in body.parameters() if p.requires_grad and p.grad is None]
    for p in unreachable:
        p.requires_grad_(False)
    body.zero_grad(set_to_none=True)
    body.train(was_training)
    return len(unreachable)


def load_backbone_weights(body: nn.Module, path: str | Path) -> None:
    """Load a local weight file into a timm ``features_only`` model, reporting what did not match.

    The file is read as ``python -m aidpose.import_weights`` reads it (:func:`aidpose.weights.read_source`);
    a ``net.backbone.body.`` (aidpose checkpoint) or ``backbone.`` (mmpose, UDP-Pose) prefix is dropped and
    only those tensors are used.
    """
    from aidpose.weights.importer import read_source

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone.weights={path}: no such file (give a .pth/.ckpt/.safetensors path)"
        )
    state, _ = read_source(path)
    for prefix in ("net.backbone.body.", "backbone."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    state = clean_state_dict(state)
    own = body.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ValueError(
            f"backbone.weights={path}: none of its {len(state)} tensors match the backbone's parameter names"
        )
    body.load_state_dict(matched, strict=False)
    if len(matched) < len(own):
        print(
            f"[aidpose] backbone.weights: {len(own) - len(matched)} backbone tensors not in {path.name} (kept at init)"
        )
    if len(matched) < len(state):
        print(
            f"[aidpose] backbone.weights: {len(state) - len(matched)} tensors of {path.name} unused (e.g. classifier)"
        )
