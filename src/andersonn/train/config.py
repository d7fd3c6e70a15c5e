"""Training configuration: one typed, validated record of every knob."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..deq import check_correction_states, check_phantom_options
from ..fileio import atomic_write_text
from ..solvers import SolverInputError, available_solvers, get_solver

__all__ = ["TrainConfig", "ConfigError", "NOT_COMPARED", "setting_differences"]

# Settings that do not change what a run computes (where it is written, how often it is checkpointed):
# a resumed or reused run is not compared on them.
NOT_COMPARED = frozenset({"out_dir", "checkpoint_every"})
_ABSENT = object()


class ConfigError(ValueError):
    """A bad flag or flag combination, named in the message."""


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if value is None:
        return "unset"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def setting_differences(saved: dict[str, Any], asked: dict[str, Any], ignore: frozenset[str] | set[str] = NOT_COMPARED,
                        ) -> list[str]:
    """The settings of ``asked`` that differ from ``saved`` (two :meth:`TrainConfig.to_dict` records), each as
    ``"--flag SAVED (saved) vs ASKED (asked)"``; dataset options are compared one by one.

    >>> setting_differences(TrainConfig(lr=1e-3).to_dict(), TrainConfig(lr=0.01, checkpoint_every=5).to_dict())
    ['--lr 0.001 (saved) vs 0.01 (asked)']
    >>> setting_differences(TrainConfig().to_dict(), TrainConfig(solver_options={"m": 3}).to_dict())
    ['--solver-option m: (absent) (saved) vs 3 (asked)']
    >>> setting_differences({"dataset_options": {"image_size": 8}}, {"dataset_options": {"image_size": 16, "seed": 1}})
    ['--image-size 8 (saved) vs 16 (asked)', '--dataset-option seed: (absent) (saved) vs 1 (asked)']
    """
    out = []
    for key in asked:
        if key in ignore:
            continue
        was, now = saved.get(key, _ABSENT), asked[key]
        if key in ("dataset_options", "solver_options") and isinstance(was, dict) and isinstance(now, dict):
            for opt in list(was) + [o for o in now if o not in was]:
                a, b = was.get(opt, _ABSENT), now.get(opt, _ABSENT)
                if a != b:
                    flag = ("--image-size" if opt == "image_size" else
                            f"--{key[:-1].replace('_', '-')} {opt}:")
                    out.append(f"{flag} {_show(a)} (saved) vs {_show(b)} (asked)")
        elif was != now:
            out.append(f"--{key.replace('_', '-')} {_show(was)} (saved) vs {_show(now)} (asked)")
    return out


#: Weight of each fixed-point-correction state's loss against the final state's (TorchDEQ's gamma).
DEFAULT_CORRECTION_WEIGHT = 0.8


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults: the implicit-layers tutorial's recipe).

    Example:
        >>> cfg = TrainConfig(dataset="digits", solver="forward", epochs=1)
        >>> cfg.deq_options()["solver"], cfg.deq_options()["backward_solver"]
        ('forward', 'forward')
        >>> TrainConfig(solver_options={"m": 3}).deq_options()["m"]
        3
    """

    dataset: str = "digits"
    data_dir: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    out_dir: str = "runs/train"
    # solver
    solver: str = "anderson"
    # the solver's own options (Anderson's m, lam, beta, ...), checked by its options class; unset keys take
    # that class's defaults, which are defined there and nowhere else
    solver_options: dict[str, Any] = field(default_factory=dict)
    tol: float = 1e-3
    max_iter: int = 30
    backward: str = "ift"
    backward_solver: str = "same"
    backward_tol: float = 1e-3
    backward_max_iter: int = 30
    backward_compact: bool = True
    # --backward phantom: unrolled steps and their damping (unset: the DEQ's defaults)
    phantom_steps: int | None = None
    phantom_damping: float | None = None
    # model
    arch: str = "deq"
    depth: int = 1
    channels: int = 48
    inner_channels: int = 64
    groups: int = 8
    pool: int | None = None
    # the head also reads the image's per-channel sums (models.ChannelSumReadout); not in the poster's model
    channel_sums: bool = False
    # the channel-sum readout's learning rate as a multiple of --lr: a linear read of a few global sums needs
    # weights of order 1 while the conv path wants small steps, and at one shared LR it is still underfit
    # when the DEQ has converged (drug-like: 74% validation for the readout alone at 1e-3 for 6 epochs, 87% at 1e-2)
    channel_sums_lr_scale: float = 1.0
    # optimisation
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    lr_min: float = 1e-6
    weight_decay: float = 0.0
    augment: bool = False
    seed: int = 0
    max_train: int | None = None
    max_test: int | None = None
    checkpoint_every: int = 0
    bn_recalibrate: int = 5
    device: str = "auto"
    # model choice (on the validation split, when the dataset has one)
    label_smoothing: float = 0.0
    patience: int = 0
    # contractivity: weight of the DEQ's Jacobian penalty ||df/dz||_F^2 / dim in the loss (0: none)
    jacobian_reg: float = 0.0
    # start each training sample's solve from its fixed point of the previous epoch (train/warm_start.py)
    warm_start: bool = False
    warm_start_float16: bool = False
    warm_start_max_mb: float | None = None  # unset: WarmStartCache's default bound
    # fixed-point correction: a loss on this many intermediate iterates (DEQ correction_states), each
    # weighted correction_weight against the final one's (TorchDEQ weights its states 0.8 : 1)
    correction_states: int = 0
    correction_weight: float | None = None  # unset: DEFAULT_CORRECTION_WEIGHT

    def validate(self) -> None:
        if self.solver not in available_solvers():
            raise ConfigError(f"--solver {self.solver!r} is not a registered solver ({', '.join(available_solvers())})")
        bsolver = self.resolved_backward_solver
        if bsolver not in available_solvers():
            raise ConfigError(f"--backward-solver {bsolver!r} is not a registered solver")
        if self.arch not in ("deq", "explicit"):
            raise ConfigError(f"--arch must be 'deq' or 'explicit', got {self.arch!r}")
        if self.arch == "deq" and self.depth != 1:
            raise ConfigError("--depth applies to --arch explicit only")
        if self.arch == "explicit":
            defaults = TrainConfig()
            solver_knobs = ("solver", "solver_options", "tol", "max_iter", "backward", "backward_solver",
                            "backward_tol", "backward_max_iter", "backward_compact", "jacobian_reg",
                            "phantom_steps", "phantom_damping", "warm_start", "correction_states")
            changed = [k for k in solver_knobs if getattr(self, k) != getattr(defaults, k)]
            if changed:
                flags = ", ".join("--" + k.replace("_", "-").replace("solver-options", "solver-option") for k in changed)
                raise ConfigError(f"{flags}: solver options have no effect with --arch explicit (no fixed point)")
        if self.backward not in ("ift", "jfb", "phantom"):
            raise ConfigError(f"--backward must be 'ift', 'jfb' or 'phantom', got {self.backward!r}")
        if self.backward != "ift" and self.backward_solver != "same":
            raise ConfigError(f"--backward-solver has no effect with --backward {self.backward} (no adjoint solve)")
        phantom = {k: getattr(self, k) for k in ("phantom_steps", "phantom_damping") if getattr(self, k) is not None}
        if phantom and self.backward != "phantom":
            flags = ", ".join("--" + k.replace("_", "-") for k in phantom)
            raise ConfigError(f"{flags}: no effect without --backward phantom")
        try:
            check_phantom_options(phantom.get("phantom_steps", 1), phantom.get("phantom_damping", 1.0))
        except SolverInputError as exc:
            raise ConfigError(f"--{str(exc).replace('_', '-', 1)}") from None
        for name in ("epochs", "batch_size", "max_iter", "backward_max_iter"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("tol", "backward_tol", "lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.groups < 1:
            raise ConfigError(f"groups must be >= 1, got {self.groups}")
        for name in ("channels", "inner_channels"):
            width = getattr(self, name)
            if width < 1 or width % self.groups:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive multiple of {self.groups} "
                                  f"(the layer's GroupNorm groups), got {width}")
        if self.lr_min < 0:
            raise ConfigError(f"--lr-min must be >= 0, got {self.lr_min}")
        if self.lr_min > self.lr:
            raise ConfigError(f"--lr-min {self.lr_min} exceeds --lr {self.lr}")
        if self.bn_recalibrate < 0:
            raise ConfigError("--bn-recalibrate must be >= 0 (0: keep the momentum running averages)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1 (or unset for all), got {value}")
        size = self.dataset_options.get("image_size")
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ConfigError(f"--image-size must be a positive integer, got {size!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not (math.isfinite(self.jacobian_reg) and self.jacobian_reg >= 0):
            raise ConfigError(f"--jacobian-reg must be a finite number >= 0 (0: no penalty), got {self.jacobian_reg}")
        for name in ("warm_start_float16", "warm_start_max_mb"):
            if getattr(self, name) not in (None, False) and not self.warm_start:
                raise ConfigError(f"--{name.replace('_', '-')}: no effect without --warm-start")
        if self.warm_start_max_mb is not None and not (math.isfinite(self.warm_start_max_mb) and self.warm_start_max_mb > 0):
            raise ConfigError(f"--warm-start-max-mb must be a finite number > 0, got {self.warm_start_max_mb}")
        if not (math.isfinite(self.channel_sums_lr_scale) and self.channel_sums_lr_scale > 0):
            raise ConfigError(f"--channel-sums-lr-scale must be a finite number > 0, got {self.channel_sums_lr_scale}")
        if self.channel_sums_lr_scale != 1.0 and not self.channel_sums:
            raise ConfigError("--channel-sums-lr-scale: no effect without --channel-sums")
        if self.correction_weight is not None and not self.correction_states:
            raise ConfigError("--correction-weight: no effect without --correction-states")
        if self.correction_weight is not None and not (math.isfinite(self.correction_weight) and self.correction_weight >= 0):
            raise ConfigError(f"--correction-weight must be a finite number >= 0, got {self.correction_weight}")
        try:
            check_correction_states(self.correction_states, self.max_iter)
        except SolverInputError:
            raise ConfigError(f"--correction-states must be an integer in 0..--max-iter - 1 = {self.max_iter - 1}, "
                              f"got {self.correction_states}") from None
        if self.patience < 0:
            raise ConfigError("--patience must be >= 0 (0: train every epoch)")
        if self.checkpoint_every < 0:
            raise ConfigError("--checkpoint-every must be >= 0 (0: once per epoch)")
        try:
            get_solver(self.solver).Options.from_kwargs(self.solver, **self.solver_options)
        except SolverInputError as exc:
            raise ConfigError(f"--solver-option: {exc}") from None

    @property
    def resolved_correction_weight(self) -> float:
        return DEFAULT_CORRECTION_WEIGHT if self.correction_weight is None else self.correction_weight

    @property
    def resolved_backward_solver(self) -> str:
        return self.solver if self.backward_solver == "same" else self.backward_solver

    def deq_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`andersonn.DEQ`."""
        bsolver = self.resolved_backward_solver
        return dict(
            solver=self.solver, tol=self.tol, max_iter=self.max_iter, backward=self.backward,
            backward_solver=bsolver, backward_tol=self.backward_tol, backward_max_iter=self.backward_max_iter,
            backward_compact=self.backward_compact, jacobian_penalty=self.jacobian_reg > 0,
            correction_states=self.correction_states,
            **{k: getattr(self, k) for k in ("phantom_steps", "phantom_damping") if getattr(self, k) is not None},
            **self.solver_options,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown config keys: {sorted(unknown)}")
        return cls(**data)

    def save(self, path: Path) -> None:
        atomic_write_text(json.dumps(self.to_dict(), indent=2), path)
