"""The dataset registry: names -> loaders returning :class:`ImageDataset`."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["ImageDataset", "DatasetError", "register_dataset", "load_dataset", "available_datasets", "dataset_info",
           "parse_dataset_options"]


class DatasetError(RuntimeError):
    """A dataset could not be loaded; the message says what was expected and where."""


@dataclass
class ImageDataset:
    """Train/test image tensors ``(N, C, H, W)`` float32 and labels ``(N,)`` int64, and optionally a
    validation split (``x_val``/``y_val``): when there is one, training chooses its epoch on it and
    touches the test split once, at the end."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def has_validation(self) -> bool:
        return self.x_val is not None and self.y_val is not None and self.y_val.numel() > 0

    def __post_init__(self) -> None:
        if (self.x_val is None) != (self.y_val is None):
            raise DatasetError(f"{self.name}: x_val and y_val come together")
        splits = [("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)]
        if self.x_val is not None:
            splits.append(("val", self.x_val, self.y_val))
        for split, x, y in splits:
            if x.ndim != 4 or x.dtype != torch.float32:
                raise DatasetError(f"{self.name}: x_{split} must be float32 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
            if y.shape != (x.shape[0],) or y.dtype != torch.int64:
                raise DatasetError(f"{self.name}: y_{split} must be int64 of shape ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.class_names)):
                raise DatasetError(f"{self.name}: y_{split} has labels outside 0..{len(self.class_names) - 1}")
        if self.x_train.shape[1:] != self.x_test.shape[1:] or (
                self.x_val is not None and self.x_val.shape[1:] != self.x_train.shape[1:]):
            raise DatasetError(f"{self.name}: train, validation and test images differ in shape")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict[str, Any]:
        """Sizes, shape and class balance, JSON-ready."""
        out = {
            "name": self.name, "image_shape": list(self.image_shape), "classes": self.class_names,
            "train": int(self.y_train.numel()), "test": int(self.y_test.numel()),
            "train_class_counts": torch.bincount(self.y_train, minlength=self.num_classes).tolist(),
            "test_class_counts": torch.bincount(self.y_test, minlength=self.num_classes).tolist(),
        }
        if self.has_validation:
            out["val"] = int(self.y_val.numel())
            out["val_class_counts"] = torch.bincount(self.y_val, minlength=self.num_classes).tolist()
        return out


Loader = Callable[..., ImageDataset]
_REGISTRY: dict[str, tuple[Loader, str]] = {}


def register_dataset(name: str, description: str) -> Callable[[Loader], Loader]:
    """Register a loader ``fn(data_dir: Path | None = None, image_size: int | None = None, **kw) -> ImageDataset``."""

    def deco(fn: Loader) -> Loader:
        _REGISTRY[name] = (fn, description)
        return fn

    return deco


def available_datasets() -> dict[str, str]:
    """Registered dataset names and their one-line descriptions."""
    return {k: v[1] for k, v in sorted(_REGISTRY.items())}


def dataset_info(name: str) -> str:
    return _lookup(name)[1]


def _lookup(name: str) -> tuple[Loader, str]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def load_dataset(name: str, data_dir: str | Path | None = None, **kwargs: Any) -> ImageDataset:
    """Load a registered dataset; options the loader does not take are an error."""
    fn, _ = _lookup(name)
    params = inspect.signature(fn).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise DatasetError(f"dataset {name!r} does not take option(s) {unknown}; it takes {[p for p in params if p != 'data_dir']}")
    return fn(data_dir=Path(data_dir) if data_dir is not None else None, **kwargs)


def parse_dataset_options(name: str, pairs: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> loader keyword arguments, each checked against the loader's signature and
    converted to the type of its default (``none`` for ``None``).

    >>> parse_dataset_options("digits", ["image_size=8"])
    {'image_size': 8}
    """
    fn, _ = _lookup(name)
    params = {k: p for k, p in inspect.signature(fn).parameters.items() if k != "data_dir"}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise DatasetError(f"--dataset-option {pair!r}: expected KEY=VALUE")
        if key not in params:
            raise DatasetError(f"dataset {name!r} has no option {key!r}; it takes {', '.join(params)}")
        default = params[key].default
        annotation = str(params[key].annotation)
        value: Any = text.strip()
        try:
            if value.lower() == "none":
                value = None
            elif isinstance(default, bool) or annotation.startswith("bool"):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = value.lower() in ("true", "1")
            elif isinstance(default, int) or annotation.startswith("int"):
                value = int(value)
            elif isinstance(default, float) or annotation.startswith("float"):
                value = float(value)
        except ValueError:
            raise DatasetError(f"--dataset-option {key}={text!r}: not a valid {annotation}") from None
        out[key] = value
    return out
