#!/usr/bin/env bash
# The five-minute GPU check (issue 25) on a one-GPU machine, bare but for this repository: installs what aidpose
# needs, runs the CUDA tests (tests/test_cuda.py), then scripts/gpu_check.py measures; prints ONE JSON on stdout
# (everything else goes to stderr) and stops itself at GPU_CHECK_LIMIT_S seconds (default 360), printing what
# it measured by then.
#
# Install: with a .whl/ folder (`make gpu-wheels` fills it, for machines without network) the packages the
# machine's Python lacks are installed from it into /tmp/aidpose-site (no index, no dependencies resolved):
# the machine must already have torch, pytorch-lightning, timm, opencv, numpy, scipy, pytest. Without .whl/,
# `make install PIP_CONSTRAINT=` (the .venv of `make install`, torch from the index).
#
#   bash scripts/gpu_check.sh             # on the GPU machine
#   bash scripts/gpu_check.sh --dry-run   # on a CPU: no install, CUDA tests collected only, gpu_check.py --dry-run
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_S=${GPU_CHECK_LIMIT_S:-360}
TESTS_LIMIT_S=${GPU_CHECK_TESTS_LIMIT_S:-100}
started=$(date +%s)
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=disabled HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

if [[ "${1:-}" == "--dry-run" ]]; then
  PY=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  tests=$("$PY" -m pytest -q --collect-only -m cuda -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -n 1)
  exec "$PY" scripts/gpu_check.py --dry-run --budget-s 120 --tests-summary "collected only: $tests" \
    --setup-s "$(( $(date +%s) - started ))"
fi

if compgen -G ".whl/*.whl" >/dev/null; then
  PY=python3
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/aidpose-site \
    .whl/*.whl >&2
  export PYTHONPATH="$PWD/src:/tmp/aidpose-site${PYTHONPATH:+:$PYTHONPATH}"
else
  make install PIP_CONSTRAINT= >&2
  PY=.venv/bin/python
fi

tests_log=$(mktemp)
set +e
timeout "$TESTS_LIMIT_S" "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py >"$tests_log" 2>&1
tests_rc=$?
set -e
cat "$tests_log" >&2
tests=$(tail -n 1 "$tests_log")
[[ $tests_rc -eq 124 ]] && tests="stopped after ${TESTS_LIMIT_S} s: $tests"

setup_s=$(( $(date +%s) - started ))
budget_s=$(( LIMIT_S - setup_s - 10 ))
# the helper stops itself at its budget (SIGALRM) and prints partial figures; timeout is the backstop
exec timeout --signal=TERM --kill-after=5 "$(( budget_s + 5 ))" "$PY" scripts/gpu_check.py \
  --budget-s "$budget_s" --tests-summary "$tests (exit $tests_rc)" --setup-s "$setup_s"
