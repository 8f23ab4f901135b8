"""The ``dropper`` config group composes with Hydra and instantiates the AID droppers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from aidpose.aid import Cutout, GridMask, HideAndSeek, InformationDropper, RandomErasing
from tests.helpers import compose_config

OPTIONS = {"cutout": Cutout, "random_erasing": RandomErasing, "has": HideAndSeek, "gridmask": GridMask}


@pytest.fixture
def compose_dropper(tmp_path: Path, repo_root: Path):
    """Compose a tiny primary config (defaults: dropper=none) that searches the repository's conf/."""
    search_path = f"file://{repo_root / 'conf'}"
    (tmp_path / "primary.yaml").write_text(
        f"defaults:\n  - dropper: none\n  - _self_\nhydra:\n  searchpath:\n    - {search_path}\n"
    )

    def _compose(overrides: list[str]):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
            return compose("primary", overrides=overrides)

    yield _compose
    GlobalHydra.instance().clear()


def test_none_makes_the_dropper_absent(compose_dropper):
    cfg = compose_dropper([])
    assert "dropper" in cfg and cfg.dropper is None
    assert compose_dropper(["dropper=none"]).dropper is None


@pytest.mark.parametrize(("option", "cls"), OPTIONS.items())
def test_options_instantiate_with_every_parameter_explicit(compose_dropper, option, cls):
    cfg = compose_dropper([f"dropper={option}"])
    dropper = instantiate(cfg.dropper)
    assert type(dropper) is cls
    explicit = set(cfg.dropper) - {"_target_"}
    assert explicit == set(dropper.get_transform_init_args_names())
    # the YAML defaults are the class defaults (both follow the official code)
    assert {k: v for k, v in dropper.to_dict()["transform"].items() if k != "__class_fullname__"} == {
        k: v for k, v in cls().to_dict()["transform"].items() if k != "__class_fullname__"
    }


def test_parameters_override_from_the_command_line(compose_dropper):
    dropper = instantiate(
        compose_dropper(["dropper=cutout", "dropper.p=0.5", "dropper.size_range=[0.1,0.2]"]).dropper
    )
    assert isinstance(dropper, InformationDropper)
    assert dropper.p == 0.5 and dropper.size_range == (0.1, 0.2)
    has = instantiate(
        compose_dropper(["dropper=has", "dropper.cell_sizes=[0.25,0.5]", "dropper.fill=mean"]).dropper
    )
    assert has.cell_sizes == (0.25, 0.5) and has.fill == "mean"


def test_has_cells_follow_the_paradigm(tmp_path: Path) -> None:
    """Top-down: (0, 16, 32, 44) px of a 192-px crop; bottom-up: the same pixels of a 512-px image."""
    cells = {
        paradigm: instantiate(
            compose_config([f"paradigm={paradigm}", "dropper=has"], tmp_path).dropper
        ).cell_sizes
        for paradigm in ("topdown", "bottomup")
    }
    assert cells["topdown"] == pytest.approx([px / 192 for px in (0, 16, 32, 44)], abs=1e-8)
    assert cells["bottomup"] == pytest.approx([px / 512 for px in (0, 16, 32, 44)])
