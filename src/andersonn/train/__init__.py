"""Training DEQ classifiers: config, loop, checkpoints, data parallelism, and the saved model folder."""

from .config import ConfigError, TrainConfig
from .saved_model import load_trained, save_model
from .trainer import TrainResult, TrainingError, build_model, evaluate, export_best, recalibrate_batchnorm, train

__all__ = ["TrainConfig", "ConfigError", "train", "TrainResult", "TrainingError", "build_model", "evaluate", "load_trained",
           "save_model", "recalibrate_batchnorm", "export_best"]
