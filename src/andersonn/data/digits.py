"""scikit-learn's bundled 8x8 handwritten digits: real data that ships with the package."""

from __future__ import annotations

from pathlib import Path

import torch

from .registry import ImageDataset, register_dataset
from .transforms import resize, standardize


@register_dataset("digits", "scikit-learn's 1,797 handwritten digits (8x8, 10 classes), resized; always available")
def load_digits(data_dir: Path | None = None, image_size: int = 16, test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """Digits split 80/20 (stratified, seeded), upsampled to ``image_size`` and standardised.

    ``data_dir`` is ignored: the data is inside scikit-learn.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(
        list(range(len(y))), test_size=test_fraction, random_state=seed, stratify=y.numpy()
    )
    x = resize(x, image_size)
    x_train, x_test, mean, std = standardize(x[idx_train], x[idx_test])
    return ImageDataset(
        name="digits", x_train=x_train.contiguous(), y_train=y[idx_train], x_test=x_test.contiguous(),
        y_test=y[idx_test], class_names=[str(d) for d in range(10)],
        meta={"source": "sklearn.datasets.load_digits", "mean": mean, "std": std, "image_size": image_size},
    )
