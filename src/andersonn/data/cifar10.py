"""CIFAR-10 from a local folder in the standard "python" format (never downloaded)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .registry import DatasetError, ImageDataset, register_dataset
from .transforms import resize

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]
EXPECTED = (
    "the CIFAR-10 'python' batches (data_batch_1..5, test_batch, batches.meta) as extracted from "
    "cifar-10-python.tar.gz, either in that folder or in its cifar-10-batches-py/ subfolder"
)


def _resolve(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise DatasetError(f"cifar10 needs --data-dir pointing to {EXPECTED}; it is never downloaded")
    for d in (data_dir, data_dir / "cifar-10-batches-py"):
        if (d / TEST_FILE).is_file():
            return d
    if not data_dir.exists():
        raise DatasetError(f"cifar10: folder {data_dir} does not exist; expected {EXPECTED}")
    raise DatasetError(f"cifar10: no '{TEST_FILE}' in {data_dir}; expected {EXPECTED}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"cifar10: missing file {path}; expected {EXPECTED}")
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # unpickling errors come in many types
        raise DatasetError(f"cifar10: {path} is not a readable CIFAR batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"cifar10: {path} holds a {type(batch).__name__}, expected a dict with b'data' and b'labels'")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DatasetError(f"cifar10: {path} lacks b'data' or b'labels' (keys: {sorted(map(str, batch))})")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DatasetError(f"cifar10: {path} b'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"cifar10: {path} b'labels' must be N integers in 0..9")
    return data, labels


def _to_tensor(data: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@register_dataset("cifar10", "CIFAR-10 (32x32 RGB, 10 classes) from a local folder given by --data-dir")
def load_cifar10(data_dir: Path | None = None, image_size: int = 32, max_train: int | None = None,
                 max_test: int | None = None) -> ImageDataset:
    """Read CIFAR-10 "python" batches from ``data_dir`` and normalise with the usual channel statistics."""
    folder = _resolve(data_dir)
    parts = [_read_batch(folder / name) for name in TRAIN_FILES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(folder / TEST_FILE)
    names = [f"class {i}" for i in range(10)]
    meta_path = folder / META_FILE
    if meta_path.is_file():
        with open(meta_path, "rb") as fh:
            meta = pickle.load(fh, encoding="bytes")
        raw = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
        if raw and len(raw) == 10:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    x_train, y_train = x_train[:max_train], y_train[:max_train]
    x_test, y_test = x_test[:max_test], y_test[:max_test]
    return ImageDataset(
        name="cifar10", x_train=resize(_to_tensor(x_train), image_size).contiguous(),
        y_train=torch.from_numpy(y_train), x_test=resize(_to_tensor(x_test), image_size).contiguous(),
        y_test=torch.from_numpy(y_test), class_names=names,
        meta={"source": str(folder), "mean": MEAN, "std": STD, "image_size": image_size},
    )
