"""RSN and its multi-stage head: mmpose 1.x's parameter counts, tensor names and outputs, forward/backward.

Reference figures come from mmpose 1.3.2 itself, built in a side environment outside the repository
(``pip install --no-deps mmpose==1.3.2 mmengine==0.10.7 mmcv-lite==2.1.0`` + pure-Python dependencies; its
``mmpose/models/backbones/rsn.py`` and ``mmpose/models/heads/heatmap_heads/mspn_head.py`` imported directly):

- ``tests/data/rsn/mmpose_rsn_state_dicts.json.gz``: parameter and state-dict key counts of the zoo's RSN-18,
  RSN-50, 2×RSN-50, 3×RSN-50 (configs ``td-hm_*rsn*_8xb32-210e_coco-256x192.py``) and the full key → shape list
  of 2×RSN-50 under ``backbone.`` / ``head.``.
- ``tests/data/rsn/mmpose_rsn_small_outputs.json``: a reduced mmpose RSN (2 stages of 2 units, 32 channels) with
  the deterministic weights of :func:`deterministic_state` on :func:`deterministic_input`, in eval mode: its
  outputs' per-channel sums and a strided sample.
"""

from __future__ import annotations

import gzip
import json
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from aidpose.models.pose_net import PoseNet
from aidpose.models.rsn import (
    RSN,
    RSN_ARCHITECTURES,
    MSPNHead,
    create_rsn_backbone,
    create_rsn_pose_net,
)
from aidpose.weights.formats import FORMATS
from aidpose.weights.importer import describe_source, place_tensors

DATA = Path(__file__).parent / "data" / "rsn"

# sum of numel over mmpose 1.3.2's RSN backbone + MSPNHead parameters (side environment, see the module docstring)
MMPOSE_PARAMETERS = {"rsn18": 9_144_936, "rsn50": 19_328_584, "rsn50_x2": 39_261_904, "rsn50_x3": 59_195_224}


def load_state_dict_fixture() -> dict:
    with gzip.open(DATA / "mmpose_rsn_state_dicts.json.gz", "rt") as f:
        return json.load(f)


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights that are a function of each tensor's name and shape only (the side script uses the same)."""
    filled = {}
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            filled[name] = tensor
            continue
        phase = zlib.crc32(name.encode()) % 1000 / 1000.0
        v = np.sin(0.731 * np.arange(tensor.numel(), dtype=np.float64) + 6.283 * phase).reshape(tensor.shape)
        if name.endswith("running_var"):
            v = 1.0 + 0.2 * v**2
        elif name.endswith(("running_mean", "bn.bias")):
            v = 0.1 * v
        elif name.endswith("bn.weight"):
            v = 1.0 + 0.1 * v
        else:  # convolution weights
            v = 1.5 * v / np.sqrt(np.prod(tensor.shape[1:]))
        filled[name] = torch.from_numpy(v).to(tensor.dtype)
    return filled


def deterministic_input() -> torch.Tensor:
    """A (1, 3, 64, 48) image of sine waves."""
    y, x = np.meshgrid(np.arange(64), np.arange(48), indexing="ij")
    return torch.from_numpy(np.stack([np.sin(0.3 * x + 0.2 * y + c) for c in range(3)])[None]).float()


@pytest.mark.parametrize("name", sorted(MMPOSE_PARAMETERS))
def test_parameter_count_equals_mmpose(name) -> None:
    net = create_rsn_pose_net(name)
    assert sum(p.numel() for p in net.parameters()) == MMPOSE_PARAMETERS[name]
    assert len(net.state_dict()) == load_state_dict_fixture()["num_state_dict_keys"][name]


def test_head_parameter_count_by_hand() -> None:
    # per stage and unit: 1×1 conv 256→256 + BN(256), 3×3 conv 256→17 + BN(17); no biases (BN follows)
    per_unit = 256 * 256 + 2 * 256 + 256 * 17 * 9 + 2 * 17
    assert per_unit == 105_250
    head = MSPNHead(256, [17] * 8, num_stages=2, num_units=4)  # one output of 17 heatmaps per stage and unit
    assert sum(p.numel() for p in head.parameters()) == 8 * per_unit


def test_state_dict_keys_and_shapes_equal_mmpose_after_prefix_map() -> None:
    # mmpose 1.x's key → shape list of 2×RSN-50, placed by the released-weights name maps (format mmpose)
    reference = load_state_dict_fixture()["state_dict"]["rsn50_x2"]
    net = create_rsn_pose_net("rsn50_x2")
    placed, unplaced = place_tensors(FORMATS["mmpose"], reference, net)
    assert unplaced == []
    own = {f"net.{k}": list(v.shape) for k, v in net.state_dict().items()}
    assert {name: reference[source] for name, source in placed.items()} == own
    assert describe_source(reference) == "2×RSN-50 (2 stages)"


def test_reduced_rsn_reproduces_mmpose_outputs() -> None:
    reference = json.loads((DATA / "mmpose_rsn_small_outputs.json").read_text())
    net = PoseNet(
        RSN(2, [1, 1], num_steps=2, unit_channels=32), partial(MSPNHead, num_stages=2, num_units=2), [17] * 4
    )
    state = net.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == reference["state_dict"]
    net.load_state_dict(deterministic_state(state))
    net.eval()
    with torch.no_grad():
        outputs = net(deterministic_input())
    assert len(outputs) == len(reference["outputs"]) == 4
    for out, ref in zip(outputs, reference["outputs"], strict=True):
        assert list(out.shape) == ref["shape"] == [1, 17, 16, 12]
        np.testing.assert_allclose(out.sum(dim=(0, 2, 3)).numpy(), ref["channel_sum"], atol=1e-4)
        np.testing.assert_allclose((out**2).sum(dim=(0, 2, 3)).numpy(), ref["channel_sum_sq"], atol=1e-4)
        np.testing.assert_allclose(out[0, :, ::5, ::4].numpy(), ref["sample"], atol=1e-5)


def test_two_stage_rsn50_forward_backward_at_256x192() -> None:
    torch.manual_seed(0)
    net = create_rsn_pose_net("rsn50_x2")
    outputs = net(torch.randn(1, 3, 256, 192))
    assert [tuple(o.shape) for o in outputs] == [(1, 17, 64, 48)] * 8  # every stage and unit at stride 4
    sum(o.square().mean() for o in outputs).backward()
    stem = net.backbone.top.top[0].conv.weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    for layer in net.head.predict_layers:  # intermediate supervision reaches every predictor
        assert layer.conv_layers[1].conv.weight.grad.abs().sum() > 0
    unused = [name for name, p in net.named_parameters() if p.grad is None]
    assert unused == []


def test_architectures_and_errors() -> None:
    assert RSN_ARCHITECTURES["rsn50_x2"] == {"num_stages": 2, "num_blocks": (3, 4, 6, 3)}
    backbone = create_rsn_backbone("rsn18", unit_channels=64)
    assert (backbone.num_stages, backbone.num_units, backbone.out_channels) == (1, 4, 64)
    with pytest.raises(ValueError, match="unknown RSN architecture 'rsn101'"):
        create_rsn_backbone("rsn101")
    with pytest.raises(ValueError, match="at least 2 units"):
        RSN(1, [3])
    # a name under neither mmpose part nor one of RSN's modules has no place (the import lists it as unused)
    odd = ["keypoint_head.predict_layers.0.conv_layers.0.conv.weight", "backbone.fc.weight"]
    assert place_tensors(FORMATS["mmpose"], odd, create_rsn_pose_net("rsn18")) == ({}, odd)
    head = MSPNHead(32, [17] * 4, num_stages=2, num_units=2)
    features = RSN(1, [1, 1], num_steps=2, unit_channels=32)(torch.zeros(1, 3, 64, 48))
    with pytest.raises(ValueError, match="got features of 1 stages with \\[2\\] units"):
        head(features)
    with pytest.raises(ValueError, match="MSPNHead has 4 output"):  # the codec's output channels must fit
        MSPNHead(32, [17] * 3, num_stages=2, num_units=2)
