# Two commands do everything on a fresh machine with Python 3.10+: `make train` and `make test`.
# Both create .venv if missing and install aidpose into it (editable) before running.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Keep torch/torchvision at the builds on this machine's disk (no multi-GB download); lift with PIP_CONSTRAINT=
PIP_CONSTRAINT ?= $(CURDIR)/.ci/pip-constraints.txt
export PIP_CONSTRAINT
export NO_ALBUMENTATIONS_UPDATE := 1

ARGS ?=

.PHONY: install train test lint format bench gpu-wheels reproduce-synthpose reproduce-synthpose-converged clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

## train the default config (SynthPose, CPU); extra Hydra overrides via ARGS="backbone=resnet18 dropper=cutout"
train: install
	$(PY) -m aidpose.train $(ARGS)

## lint + the whole test suite, on every core (pytest-xdist; PYTEST_WORKERS=0 runs it in one process)
PYTEST_WORKERS ?= auto
test: install lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(ARGS)

lint: install
	$(PY) -m ruff check src tests scripts
	$(PY) -m ruff format --check src tests scripts

format: install
	$(PY) -m ruff check --fix src tests scripts
	$(PY) -m ruff format src tests scripts

## speed benchmarks (print JSON)
bench: install
	$(PY) scripts/bench_pipeline.py
	$(PY) scripts/bench_train_loop.py
	$(PY) scripts/bench_synthpose.py
	$(PY) scripts/bench_droppers.py
	$(PY) scripts/bench_eval.py
	$(PY) scripts/bench_bottomup.py
	$(PY) scripts/bench_models.py

## .whl/: wheels (Python 3.12, manylinux x86_64) of what a GPU machine's Python lacks, at .venv's versions, for
## scripts/gpu_check.sh where that machine has no network; antlr4-python3-runtime has no wheel: built here (pure Python)
GPU_WHEELS := hydra-core omegaconf pycocotools albumentations albucore pydantic pydantic-core annotated-types \
	typing-inspection typing-extensions simsimd stringzilla
PLATFORMS := $(foreach p,manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1,--platform $(p)_x86_64)
pinned = $(shell $(PY) -c "from importlib.metadata import version; print(' '.join(f'{n}=={version(n)}' for n in '$(1)'.split()))")
gpu-wheels: install
	rm -rf .whl
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(PLATFORMS) -d .whl $(call pinned,$(GPU_WHEELS))
	$(PY) -m pip wheel --quiet --no-deps -w .whl $(call pinned,antlr4-python3-runtime)

## the SynthPose AID study (docs/results/synthpose_aid.md): hours of CPU; resumes where it stopped
reproduce-synthpose: install
	$(PY) scripts/synthpose_study.py $(ARGS)
	$(PY) -m aidpose.report docs/results/synthpose_aid/runs --out docs/results/synthpose_aid/report
	$(PY) -m aidpose.report docs/results/synthpose_aid/runs --baseline schedule=s2 --out docs/results/synthpose_aid/report_vs_s2

## the second study (docs/results/synthpose_aid_converged.md): the paper's schedules unscaled, converged baseline
reproduce-synthpose-converged: install
	$(PY) scripts/synthpose_study.py --study synthpose_aid_converged $(ARGS)
	$(PY) -m aidpose.report docs/results/synthpose_aid_converged/convergence --out docs/results/synthpose_aid_converged/report
	@# the cells, once the convergence rule has chosen a setting (it chose none: docs/results/synthpose_aid_converged.md)
	@if [ -d docs/results/synthpose_aid_converged/runs ]; then \
	  $(PY) -m aidpose.report docs/results/synthpose_aid_converged/runs --out docs/results/synthpose_aid_converged/report_cells && \
	  $(PY) -m aidpose.report docs/results/synthpose_aid_converged/runs --baseline schedule=s2 --out docs/results/synthpose_aid_converged/report_vs_s2; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
