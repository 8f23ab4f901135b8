"""docs/paper_rows.md: every command in its tables composes to the setting its row states."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.helpers import REPO_ROOT, compose_config

DOC = REPO_ROOT / "docs" / "paper_rows.md"
COMMAND = re.compile(r"`(python -m aidpose\.train [^`]+)`")


def doc_rows() -> list[tuple[str, str]]:
    """(row label, command) of every table row of the document that names a command."""
    rows = []
    for line in DOC.read_text().splitlines():
        match = COMMAND.search(line)
        if line.startswith("| ") and match:
            rows.append((line.split("|")[1].strip(), match.group(1)))
    return rows


def test_the_document_names_its_commands() -> None:
    labels = [label for label, _ in doc_rows()]
    assert len(labels) == len(set(labels)) >= 20  # one command per row, no row twice
    assert {"1.3", "3.2", "4.1", "4.2", "E1", "E5"} <= set(labels)


@pytest.mark.parametrize(("label", "command"), doc_rows())
def test_every_command_composes(label, command, tmp_path) -> None:
    args = shlex.split(command)[3:]
    overrides = [a for a in args if a != "-m"]
    cfg = compose_config(overrides, tmp_path)
    for override in overrides:  # every group choice the command makes is the run's
        key, value = override.split("=", 1)
        if key in cfg.hydra.runtime.choices:
            assert cfg.hydra.runtime.choices[key] == value, f"row {label}: {override}"
    if "-m" in args:
        assert cfg.hydra.sweeper.params, f"row {label}: a -m command needs the file's sweep"
    paradigm = "bottomup" if label.startswith(("3.", "4.2")) else "topdown"
    assert cfg.paradigm.name == paradigm and cfg.dataset.name in ("coco", "coco_aic", "crowdpose")
    if label.startswith("E") or label == "all":
        assert cfg.test.boxes == "gt"  # the paper reports Table 5 on ground-truth boxes
    elif paradigm == "topdown":
        assert cfg.test.boxes == "detections"
