"""What the app (and `python -m semiad`) exposes of each detector: display name, main
hyperparameters, app defaults. Each detector class declares its own (`display_name`, `app_settings`,
`FAST`, `fast_by_default`, `app_defaults`; semiad/detectors/base.py); this module only reads them,
for the pages and the CLI. The data-dependent choices (representation, default method) are in
semiad/defaults.py.

App defaults differ from the paper schedules on purpose: a first model in about a minute on a CPU,
and a retrain click that fine-tunes in seconds (warm start, labeled samples oversampled so a
handful of expert labels are seen in every batch). bench/ reproduces the papers' schedules.

CPU-friendly first fits (issue 12; every method's first fit on the bundled digits within 2 minutes
on a 2-core CPU, measured by bench/first_fit.py, figures in bench/RESULTS.md):
- Toll and AMA start with the fast setting on (their FAST: narrower nets); the full-size networks
  stay one toggle away (the paper's widths; about 16× and 60× the convolution work).
- Image first fits of Toll, AMA and GANomaly get a budget in samples passed through the networks
  (their `app_defaults`): on the 198 bundled digits Toll runs 51 steps (paper: 2,000 of batch 1,000),
  AMA 8 epochs (paper: 100), GANomaly its 15 epochs; larger pools get proportionally fewer
  steps / epochs. Every value stays editable under Settings. The methods' code is unchanged.
"""
from __future__ import annotations

from typing import Any

from semiad.detectors import registry
from semiad.detectors.base import Param

__all__ = ["Param", "app_first_fit", "available", "check_params", "default_fast", "default_hyper", "display_name",
           "fast_setting", "params_of"]


def available() -> list[str]:
    """Method names in the app's order."""
    return list(registry())


def display_name(method: str) -> str:
    cls = registry().get(method)
    return cls.display_name or method if cls is not None else method


def params_of(method: str) -> list[Param]:
    """The settings the Train page shows for this method."""
    return list(registry()[method].app_settings)


def check_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` with the method's settings held to what the Train page allows (the `Param` bounds and
    options), whole numbers made ints where the setting is one; ValueError naming the setting otherwise.
    Names the method does not show are passed as given."""
    out = dict(params)
    for p in params_of(method):
        if p.name not in out:
            continue
        value = out[p.name]
        if isinstance(p.default, str) and p.options and value not in p.options:
            raise ValueError(f"{p.name}: {p.label} must be one of {', '.join(p.options)}, got {value!r}")
        if isinstance(p.default, (bool, str)):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{p.name}: {p.label} must be a number, got {value!r}")
        if isinstance(p.default, int):
            if value != int(value):
                raise ValueError(f"{p.name}: {p.label} must be a whole number, got {value}")
            value = out[p.name] = int(value)
        if (p.min is not None and value < p.min) or (p.max is not None and value > p.max):
            raise ValueError(f"{p.name}: {p.label} must be between {p.min:g} and {p.max:g}, got {value:g}")
    return out


def default_hyper(method: str, kind: str = "image", n_samples: int = 0,
                  input_shape: tuple[int, ...] = (1, 28, 28),
                  representation: dict[str, Any] | None = None) -> dict[str, Any]:
    """App defaults for a project: `kind` "image" or "tabular", `input_shape` one sample's as loaded
    (C×H×W or D, whatever the representation), `n_samples` the pool's size (0: unknown); the method's
    `app_defaults`."""
    return registry()[method].app_defaults(kind, n_samples, input_shape, representation)


def fast_setting(method: str) -> dict[str, Any]:
    """Narrower networks / fewer steps for CPU-only users, where the method defines one."""
    return dict(registry()[method].FAST)


def default_fast(method: str) -> bool:
    """Whether the Train page's fast toggle starts on for this method."""
    return registry()[method].fast_by_default and bool(fast_setting(method))


def app_first_fit(method: str, kind: str = "image", n_samples: int = 0, input_shape: tuple[int, ...] = (1, 28, 28),
                  fast: bool | None = None, representation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run params the Train page queues for a fresh model when nothing is changed (fast=None:
    the toggle's default), e.g. for benchmarks of the first fit."""
    fast = default_fast(method) if fast is None else fast and bool(fast_setting(method))
    hyper = default_hyper(method, kind, n_samples, input_shape, representation)
    if fast:
        hyper.update(fast_setting(method))
    out = {"hyper": hyper, "warm_start": False, "fast": fast}
    if representation is not None:
        out["representation"] = representation
    return out
