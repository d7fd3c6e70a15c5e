"""Training DEQ classifiers: config, loop, checkpoints, data parallelism."""

from .config import ConfigError, TrainConfig
from .trainer import (
    TrainResult, TrainingError, build_model, evaluate, export_best, load_trained, recalibrate_batchnorm, train,
)

__all__ = ["TrainConfig", "ConfigError", "train", "TrainResult", "TrainingError", "build_model", "evaluate", "load_trained", "recalibrate_batchnorm",
           "export_best"]
