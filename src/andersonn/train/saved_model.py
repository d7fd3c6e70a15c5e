"""A trained model on disk: ``model.safetensors`` (the weights) and ``config.json`` (what rebuilds it).

:func:`save_model` writes the folder at the end of training (and for interim exports);
:func:`load_trained` rebuilds the classifier from it for evaluation, analyses and screening,
without the training loop. The shipped models under ``andersonn/data/files/models`` are such folders.

Example:
    >>> import tempfile, torch
    >>> from andersonn.data import load_dataset
    >>> from andersonn.train import TrainConfig, build_model
    >>> ds = load_dataset("digits", image_size=8)
    >>> cfg = TrainConfig(dataset="digits", channels=16, inner_channels=16, dataset_options={"image_size": 8})
    >>> model = build_model(cfg, ds.image_shape, ds.num_classes)
    >>> folder = tempfile.mkdtemp()
    >>> save_model(model, cfg, ds, folder)
    >>> loaded, meta = load_trained(folder, solver="forward")   # inference with forward iteration
    >>> loaded.training, meta["class_names"][:3], meta["config"]["channels"]
    (False, ['0', '1', '2'], 16)
    >>> loaded(ds.x_test[:4]).shape
    torch.Size([4, 10])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data import ImageDataset
from ..fileio import atomic_path, atomic_write_text
from ..models import DEQClassifier, deq_classifier, explicit_classifier
from .config import ConfigError, TrainConfig

__all__ = ["save_model", "load_trained", "require_model_dir"]


def save_model(model: DEQClassifier, cfg: TrainConfig, ds: ImageDataset, out: str | Path) -> None:
    """Write ``model``'s weights (``model.safetensors``) and what rebuilds it (``config.json``: the training
    settings ``cfg``, the architecture ``model.config``, the class names and the JSON-able part of
    ``ds.meta``) into the folder ``out``, each file atomically."""
    from safetensors.torch import save_file

    out = Path(out)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:  # also gives the file a plain mode (safetensors writes 0600)
        save_file(tensors, str(tmp))
    meta = {"config": cfg.to_dict(), "model": model.config, "class_names": ds.class_names,
            "dataset_meta": {k: v for k, v in ds.meta.items() if isinstance(v, (str, int, float, list, dict))
                             and k not in ds.meta.get("not_saved", ()) and k != "not_saved"}}
    atomic_write_text(json.dumps(meta, indent=2, default=str), out / "config.json")


def require_model_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path when it holds a trained model's two files, else a ``FileNotFoundError``
    naming it (a check cheap enough to run before any work that needs the model).

    >>> require_model_dir("no/such/run")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/run is not a trained model folder (need model.safetensors and config.json)
    """
    run = Path(run_dir)
    if not (run / "model.safetensors").is_file() or not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run} is not a trained model folder (need model.safetensors and config.json)")
    return run


def load_trained(run_dir: str | Path, **deq_overrides: Any) -> tuple[DEQClassifier, dict[str, Any]]:
    """The model saved in ``run_dir`` by :func:`save_model` (which :func:`andersonn.train.train` calls at the
    end of a run) in eval mode, and its ``config.json`` as a dict.

    ``deq_overrides`` replace solver settings (e.g. ``m=3`` or ``solver="forward"``) for inference.
    A folder without the two files is a ``FileNotFoundError``; files that do not fit together are a
    :class:`~andersonn.train.ConfigError` naming the file.
    """
    from safetensors.torch import load_file

    run = require_model_dir(run_dir)
    weights, meta_path = run / "model.safetensors", run / "config.json"
    try:
        meta = json.loads(meta_path.read_text())
        cfg = TrainConfig.from_dict(meta["config"])
        mc = meta["model"]
    except (ValueError, KeyError, TypeError) as exc:  # bad JSON, missing or unknown keys
        raise ConfigError(f"{meta_path}: not a model config written by andersonn train ({type(exc).__name__}: {exc})") from None
    opts = cfg.deq_options()
    if deq_overrides.get("solver", cfg.solver) != cfg.solver:  # another solver: its own defaults, not the saved options
        for key in cfg.solver_options:
            opts.pop(key, None)
        if cfg.backward_solver == "same":
            opts["backward_solver"] = deq_overrides["solver"]
    opts |= deq_overrides
    if mc.get("arch") == "explicit":
        model = explicit_classifier(
            in_channels=mc["in_channels"], image_size=mc["image_size"], num_classes=mc["num_classes"],
            channels=mc["channels"], inner_channels=mc["inner_channels"], groups=mc["groups"], pool=mc["pool"],
            depth=mc["depth"], channel_sums=mc.get("channel_sums", False),
        )
    else:
        model = deq_classifier(
            in_channels=mc["in_channels"], image_size=mc["image_size"], num_classes=mc["num_classes"],
            channels=mc["channels"], inner_channels=mc["inner_channels"], groups=mc["groups"], pool=mc["pool"],
            channel_sums=mc.get("channel_sums", False), **opts,
        )
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # safetensors raises its own error for a truncated file, torch a RuntimeError on shapes
        raise ConfigError(f"{weights}: cannot load these weights into the model its config.json describes "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    model.eval()
    return model, meta
