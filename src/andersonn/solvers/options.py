"""Typed solver options and the stopping rule every method shares, validated with messages that name the culprit."""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from typing import Any

__all__ = ["SolverInputError", "SolverOptions", "StopRule", "check_finite"]


class SolverInputError(ValueError):
    """Raised for invalid solver inputs or options, with a message naming the culprit."""


def check_finite(owner: str, name: str, value: Any) -> None:
    """Raise :class:`SolverInputError` unless ``value`` is a finite real number (not a bool).

    Range checks such as ``lam >= 0`` let ``inf`` through, and NaN fails them with a
    message about the range rather than about NaN; this names the option and the problem.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SolverInputError(f"{owner} option {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise SolverInputError(f"{owner} option {name} must be finite, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Base of every method's typed options; unknown keys are an error, never ignored."""

    @classmethod
    def from_kwargs(cls, method: str, **kwargs: Any) -> "SolverOptions":
        names = [f.name for f in dataclasses.fields(cls)]
        for key in kwargs:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                valid = ", ".join(names) if names else "none"
                raise SolverInputError(
                    f"unknown option {key!r} for solver {method!r}.{hint} Valid options: {valid}."
                )
        opts = cls(**kwargs)
        opts.check_floats(f"solver {method!r}")
        opts.validate()
        return opts

    @classmethod
    def parse_pairs(cls, method: str, pairs: list[str]) -> dict[str, Any]:
        """``["key=value", ...]`` (the CLI's ``--solver-option``) -> keyword options for this class, each value
        converted to its field's type and the whole set validated by :meth:`from_kwargs`.

        >>> from andersonn.solvers import AndersonOptions
        >>> AndersonOptions.parse_pairs("anderson", ["m=3", "lam_mode=absolute"])
        {'m': 3, 'lam_mode': 'absolute'}
        """
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key, text = key.strip().replace("-", "_"), text.strip()
            if not sep or not key:
                raise SolverInputError(f"solver option {pair!r}: expected KEY=VALUE")
            if key in out:
                raise SolverInputError(f"solver option {key!r} given twice")
            kind = types.get(key, "str")  # an unknown key is named by from_kwargs below
            try:
                if kind == "bool":
                    if text.lower() not in ("true", "false", "1", "0"):
                        raise ValueError
                    value: Any = text.lower() in ("true", "1")
                elif kind == "int":
                    value = int(text)
                elif kind == "float":
                    value = float(text)
                else:
                    value = text
            except ValueError:
                raise SolverInputError(f"solver {method!r} option {key}={text!r}: not a valid {kind}") from None
            out[key] = value
        cls.from_kwargs(method, **out)
        return out

    def check_floats(self, owner: str) -> None:
        """Every option declared ``float`` must be a finite number (inf/NaN named and refused)."""
        for f in dataclasses.fields(self):
            if f.type in ("float", float):
                check_finite(owner, f.name, getattr(self, f.name))

    def validate(self) -> None:
        """Check option values; raise :class:`SolverInputError` on a bad one."""


@dataclasses.dataclass(frozen=True)
class StopRule:
    """When the loop stops, common to all methods."""

    tol: float = 1e-4
    max_iter: int = 50
    stop_mode: str = "rel"
    divergence_factor: float | None = 1e5
    max_restarts: int = 3
    check_every: int | None = None
    compact_fraction: float = 0.1

    def validate(self) -> None:
        check_finite("solve", "tol", self.tol)
        if not self.tol > 0:
            raise SolverInputError(f"tol must be a finite number > 0, got {self.tol!r}")
        if not isinstance(self.max_iter, int) or isinstance(self.max_iter, bool) or self.max_iter < 1:
            raise SolverInputError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.stop_mode not in ("rel", "abs"):
            raise SolverInputError(f"stop_mode must be 'rel' or 'abs', got {self.stop_mode!r}")
        if self.divergence_factor is not None:
            if isinstance(self.divergence_factor, numbers.Real) and math.isinf(self.divergence_factor):
                raise SolverInputError(
                    f"divergence_factor must be finite, got {self.divergence_factor!r} "
                    "(pass divergence_factor=None to disable the divergence check)"
                )
            check_finite("solve", "divergence_factor", self.divergence_factor)
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise SolverInputError(
                f"divergence_factor must be > 1 or None, got {self.divergence_factor!r}"
            )
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise SolverInputError(f"max_restarts must be an integer >= 0, got {self.max_restarts!r}")
        check_finite("solve", "compact_fraction", self.compact_fraction)
        if not 0.0 <= self.compact_fraction <= 1.0:
            raise SolverInputError(f"compact_fraction must be in [0, 1], got {self.compact_fraction!r}")
        if self.check_every is not None and (not isinstance(self.check_every, int) or self.check_every < 1):
            raise SolverInputError(f"check_every must be an integer >= 1 or None, got {self.check_every!r}")
