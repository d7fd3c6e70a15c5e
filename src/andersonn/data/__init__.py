"""Datasets behind one registry.

Every loader returns an :class:`ImageDataset`: float32 image tensors of a stated
shape and int64 labels for a train and a test split, with class names. Models
and training code see only this type, never a file format.

Example:
    >>> from andersonn.data import load_dataset
    >>> ds = load_dataset("digits", image_size=16)
    >>> ds.x_train.shape[1:], ds.num_classes
    (torch.Size([1, 16, 16]), 10)
"""

from .registry import (
    DatasetError, ImageDataset, available_datasets, dataset_info, load_dataset, parse_dataset_options, register_dataset,
)
from . import digits as _digits  # noqa: F401  (registers "digits")
from . import cifar10 as _cifar10  # noqa: F401  (registers "cifar10")
from . import alms as _alms  # noqa: F401  (registers the ALMS tasks)

__all__ = ["ImageDataset", "DatasetError", "register_dataset", "load_dataset", "available_datasets", "dataset_info"]
