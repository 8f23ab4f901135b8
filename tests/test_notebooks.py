"""Every notebook in notebooks/ runs top to bottom (on small data) and computes what it shows: its figures are
drawn and its numbers lie where SynthPose and the droppers put them."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def run_notebook(name: str, coco_mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Execute ``notebooks/<name>`` in a clean environment; return its code cells with their outputs."""
    path = REPO_ROOT / "notebooks" / name
    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT / "src"))
    monkeypatch.setenv("AIDPOSE_COCO_MINI", str(coco_mini))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nbclient.NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text(cell: Any) -> str:
    """What a cell printed (stdout) and the value of its last expression."""
    return "".join(
        o.get("text", "")
        if o.output_type == "stream" and o.get("name") == "stdout"
        else str(o.get("data", {}).get("text/plain", ""))
        if o.output_type == "execute_result"
        else ""
        for o in cell.outputs
    )


def figures(cells: list[Any]) -> int:
    return sum("image/png" in o.get("data", {}) for cell in cells for o in cell.outputs)


def test_droppers_notebook(coco_mini, tmp_path, monkeypatch):
    cells = run_notebook("droppers.ipynb", coco_mini, tmp_path, monkeypatch)
    assert int(text(cells[0])) == 4  # two COCO and two SynthPose crops
    assert figures(cells) == 1  # the grid of crops under every dropper
    shares = dict(re.findall(r"(\S+)\s+([\d.]+)% of \d+ visible keypoints dropped", text(cells[2])))
    assert set(shares) == {"Cutout", "Cutout@keypoint", "HideAndSeek", "GridMask", "RandomErasing"}
    assert all(5 < float(share) < 60 for share in shares.values()), shares
    assert float(shares["Cutout@keypoint"]) > float(shares["Cutout"])  # a hole on a keypoint hides more
    assert "keypoints unchanged: True" in text(cells[3])


def test_synthpose_notebook(coco_mini, tmp_path, monkeypatch):
    cells = run_notebook("synthpose.ipynb", coco_mini, tmp_path, monkeypatch)
    # val samples, one sample and its owner map, statistics, crowd preset, crowdIndex
    assert figures(cells) == 5
    stats = json.loads(text(next(c for c in cells if "dataset_statistics(" in c.source)))
    assert 0 < stats["val"]["share_hidden_v1"] < 0.5 and sum(stats["val"]["area_bands"].values()) > 0.99
    baseline = ast.literal_eval(text(next(c for c in cells if "mean_pose_results(" in c.source)))
    assert 0 <= baseline["AP"] < 5 and 0 <= baseline["AP_invis"] < 5  # the mean pose finds almost no one


def test_released_weights_notebook(coco_mini, tmp_path, monkeypatch):
    cells = run_notebook("released_weights.ipynb", coco_mini, tmp_path, monkeypatch)
    assert "format mmpose, 464 tensors loaded" in text(cells[0])
    printed = text(cells[1])
    assert "training mode: False" in printed
    difference = float(re.search(r"max \|aidpose - mmpose\| = (\S+)", printed).group(1))
    assert difference < 1e-3  # the imported model computes the reference's heatmaps
    assert figures(cells) == 1  # the input and its heatmaps
