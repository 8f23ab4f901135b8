"""Every notebook in notebooks/ runs top to bottom (on small data)."""

from __future__ import annotations

import pytest

from tests.helpers import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
EXPECTED_OUTPUT = {
    "droppers.ipynb": ["keypoints unchanged: True", "HideAndSeek"],
    "synthpose.ipynb": ["share_hidden_v1", "AP_invis"],
    "released_weights.ipynb": [
        "format mmpose, 464 tensors loaded",
        "training mode: False",
        "max |aidpose - mmpose|",
    ],
}

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, coco_mini, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT / "src"))
    monkeypatch.setenv("AIDPOSE_COCO_MINI", str(coco_mini))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nbclient.NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        for o in cell.get("outputs", [])
    )
    for expected in EXPECTED_OUTPUT[path.name]:
        assert expected in outputs
    assert "Error" not in outputs
