"""The search of ``python -m aidpose.calibrate``: match a dropper's initial training loss to a target's.

The AID paper chose each dropper's hyperparameters so that the initial training losses of all droppers
stay close: a dropper that removes more information makes the early loss higher. Here one scalar
"strength" of the calibrated dropper is searched (bracket by the two ends of its range, then bisection,
the loss assumed monotone in the strength, either direction) until its loss is within a relative
tolerance of the target dropper's loss. Everything here is independent of models and data: the loss is
any ``objective(value) -> float``.
"""

from __future__ import annotations

import inspect
import itertools
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from aidpose.aid.transforms import Strength, declared_strength
from aidpose.tables import format_table


@dataclass(frozen=True)
class Trial:
    """One evaluation of the objective: the searched value and its loss."""

    value: float
    loss: float


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`match_loss`.

    ``best`` is the trial closest to the target; ``converged`` tells whether it is within the tolerance;
    ``increasing`` is the measured direction of the loss in the value (None when both ends are equal);
    ``reason`` says why the search stopped; ``monotone_violations`` counts neighbouring trials (sorted by
    value) whose losses go against that direction, a sign that the measurement is noisier than the
    dropper's effect.
    """

    best: Trial
    trials: tuple[Trial, ...]
    converged: bool
    increasing: bool | None
    reason: str
    monotone_violations: int


def relative_gap(loss: float, target: float) -> float:
    """(loss − target) / |target|; raises for a zero target (a relative tolerance needs a scale)."""
    if target == 0:
        raise ValueError("the target loss is 0: a relative tolerance cannot be applied")
    return (loss - target) / abs(target)


def within_tolerance(loss: float, target: float, tolerance: float) -> bool:
    """|loss − target| ≤ tolerance · |target|."""
    return abs(relative_gap(loss, target)) <= tolerance


def monotone_violations(trials: Sequence[Trial], increasing: bool | None) -> int:
    """Neighbouring trials, sorted by value, whose losses move against the direction ``increasing``."""
    if increasing is None:
        return 0
    ordered = sorted(trials, key=lambda t: t.value)
    sign = 1.0 if increasing else -1.0
    return sum(sign * (b.loss - a.loss) < 0 for a, b in itertools.pairwise(ordered) if b.value > a.value)


def match_loss(
    objective: Callable[[float], float],
    target: float,
    low: float,
    high: float,
    tolerance: float,
    max_iters: int,
) -> SearchResult:
    """Search ``value`` in [low, high] with ``objective(value)`` within ``tolerance`` (relative) of ``target``.

    Evaluates both ends first (the bracket); stops there when one is within the tolerance, or when the
    target lies outside the losses of the two ends (the closer end is reported). Otherwise bisects, keeping
    the half whose ends' losses still straddle the target (the direction of the loss in the value is
    measured from the ends), at most ``max_iters`` midpoints.
    """
    if not low < high:
        raise ValueError(f"search range must have low < high, got [{low}, {high}]")
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0 (relative, e.g. 0.02), got {tolerance}")
    if max_iters < 0:
        raise ValueError(f"max_iters must be ≥ 0, got {max_iters}")
    trials: list[Trial] = []

    def evaluate(value: float) -> float:
        loss = float(objective(value))
        if not math.isfinite(loss):
            raise ValueError(f"the loss at value {value} is not finite ({loss})")
        trials.append(Trial(value, loss))
        return loss

    def result(converged: bool, increasing: bool | None, reason: str) -> SearchResult:
        best = min(trials, key=lambda t: abs(t.loss - target))
        violations = monotone_violations(trials, increasing)
        return SearchResult(best, tuple(trials), converged, increasing, reason, violations)

    loss_low, loss_high = evaluate(low), evaluate(high)
    increasing = None if loss_high == loss_low else loss_high > loss_low
    if within_tolerance(loss_low, target, tolerance) or within_tolerance(loss_high, target, tolerance):
        return result(True, increasing, "an end of the range is within the tolerance")
    if not min(loss_low, loss_high) < target < max(loss_low, loss_high):
        return result(
            False,
            increasing,
            f"the target loss {target:.6g} is outside the losses of the range ends "
            f"[{min(loss_low, loss_high):.6g}, {max(loss_low, loss_high):.6g}]: widen the range",
        )
    a, b = low, high
    for _ in range(max_iters):
        mid = 0.5 * (a + b)
        loss = evaluate(mid)
        if within_tolerance(loss, target, tolerance):
            return result(True, increasing, "within the tolerance")
        if (loss < target) == increasing:
            a = mid
        else:
            b = mid
    return result(False, increasing, f"max_iters={max_iters} bisection steps without reaching the tolerance")


# ------------------------------------------------------------------------------------ dropper configs


def strength_param(dropper_cfg: Mapping[str, Any], search_range: Sequence[float] | None = None) -> Strength:
    """The searched :class:`~aidpose.aid.Strength` of ``dropper_cfg``: the one its class declares, over
    ``search_range`` ([low, high], ``calibrate.range``) when given."""
    target = str(dropper_cfg.get("_target_", ""))
    declared = declared_strength(target)
    if declared is None:
        raise ValueError(
            f"dropper class {target} declares no strength: give it a class attribute "
            "`strength = Strength(param, mode, low, high)` (aidpose.aid.Strength) to calibrate it"
        )
    spec = declared
    if search_range is not None:
        try:
            low, high = (float(v) for v in search_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"calibrate.range must be two numbers [low, high], got {search_range!r}"
            ) from None
        if not low < high:
            raise ValueError(f"calibrate.range={[low, high]} must have low < high")
        spec = Strength(declared.param, declared.mode, low, high)
    if spec.param not in dropper_cfg:
        args = sorted(k for k in dropper_cfg if not k.startswith("_"))
        raise ValueError(f"strength argument {spec.param!r} of {target} is not in the dropper config: {args}")
    current = dropper_cfg[spec.param]
    if spec.mode == "upper":
        if not (isinstance(current, Sequence) and len(current) == 2):
            raise ValueError(f"strength mode upper needs a [lo, hi] argument; {spec.param}={current!r}")
        if spec.low < float(current[0]):
            raise ValueError(
                f"search range {[spec.low, spec.high]} goes below {spec.param}'s lower end {current[0]}: "
                "start calibrate.range at or above it"
            )
    return spec


def _round(value: float) -> float:
    """6 significant digits: the written YAML then holds exactly the values that were measured."""
    return float(f"{value:.6g}")


def dropper_at(dropper_cfg: Mapping[str, Any], spec: Strength, value: float) -> dict[str, Any]:
    """A copy of ``dropper_cfg`` with its strength argument set by ``value`` (see ``aidpose.aid.STRENGTH_MODES``)."""
    cfg = dict(dropper_cfg)
    current = cfg[spec.param]
    if spec.mode == "value":
        cfg[spec.param] = _round(value)
    elif spec.mode == "scale":
        if isinstance(current, Sequence) and not isinstance(current, str):
            cfg[spec.param] = [_round(float(v) * value) for v in current]
        else:
            cfg[spec.param] = _round(float(current) * value)
    else:
        cfg[spec.param] = [float(current[0]), _round(value)]
    return cfg


def complete_dropper_config(dropper_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``_target_`` then every constructor argument of the dropper class (defaults for the missing ones)."""
    from hydra.utils import get_class

    cls = get_class(str(dropper_cfg["_target_"]))
    full: dict[str, Any] = {"_target_": dropper_cfg["_target_"]}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in dropper_cfg:
            full[name] = dropper_cfg[name]
        elif parameter.default is not parameter.empty:
            default = parameter.default
            full[name] = list(default) if isinstance(default, tuple) else default
    unknown = set(dropper_cfg) - set(full)
    if unknown:
        raise ValueError(f"dropper config has arguments {sorted(unknown)} that {cls.__name__} does not take")
    return full


def dropper_yaml(dropper_cfg: Mapping[str, Any], comment: Sequence[str], width: int = 110) -> str:
    """A dropper config group option: ``#`` comment paragraphs wrapped to ``width``, then the config."""
    lines = [wrapped for paragraph in comment for wrapped in textwrap.wrap(paragraph, width - 2) or [""]]
    header = "".join(f"# {line}\n" if line else "#\n" for line in lines)
    body = yaml.safe_dump(dict(dropper_cfg), sort_keys=False, default_flow_style=None, allow_unicode=True)
    return header + body


def changed_arguments(dropper_cfg: Mapping[str, Any], option_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of ``dropper_cfg`` that differ from the dropper option it came from (command-line overrides)."""
    return {k: v for k, v in dropper_cfg.items() if k != "_target_" and option_cfg.get(k) != v}


def override_value(value: Any) -> str:
    """A Hydra command-line override value: ``[0.2,0.4]``, ``0.5``, ``mean``, ``null``, ``true``."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# ------------------------------------------------------------------------------------ report


def format_trials(rows: Sequence[Mapping[str, Any]], target: float) -> str:
    """Text table of measured rows (``label``, ``value``, ``setting``, ``loss``, ``dropped_kpt_frac``).

    ``value`` may be None (reference rows); the gap column is relative to ``target``.
    """
    cells = [
        [
            str(i),
            row["label"],
            "" if row.get("value") is None else f"{row['value']:.4g}",
            row["setting"],
            f"{row['loss']:.6g}",
            f"{100 * relative_gap(row['loss'], target):+.2f}%",
            f"{100 * row['dropped_kpt_frac']:.2f}",
        ]
        for i, row in enumerate(rows)
    ]
    return format_table(["#", "dropper", "value", "setting", "loss", "gap", "kpts %"], cells, "><><>>>")
