"""DEQ classifier training: the tutorial's recipe, resumable, data-parallel under torchrun."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..data import ImageDataset, load_dataset
from ..data.transforms import random_crop_flip
from ..models import DEQClassifier, count_parameters, deq_classifier, explicit_classifier
from . import distributed as D
from ..fileio import atomic_write_text, write_csv
from .checkpoint import atomic_save, load_checkpoint
from .config import NOT_COMPARED, ConfigError, TrainConfig, setting_differences
from .saved_model import save_model
from .warm_start import WarmStartCache

__all__ = ["train", "TrainResult", "TrainingError", "build_model", "evaluate", "recalibrate_batchnorm", "export_best"]

CHECKPOINT = "checkpoint.pt"
METRIC_FIELDS = [
    "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "val_loss", "val_accuracy",
    "epoch_time_s", "forward_nfe", "backward_nfe", "test_forward_nfe", "val_forward_nfe", "lr", "jacobian_fro2",
]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message says where."""


@dataclass
class TrainResult:
    config: TrainConfig
    metrics: list[dict[str, float]]
    summary: dict[str, Any]
    out_dir: Path
    completed: bool


# Version of the checkpoint layout; 2 added this field, 3 the best-on-validation state. A checkpoint whose config lacks a
# setting of the current TrainConfig comes from a version without it and is not resumed
# (filling the gap with today's default would silently change the run).
CHECKPOINT_FORMAT = 3


def default_pool(image_size: int) -> int:
    """Pooling window that leaves a map of at most 4 x 4 cells and divides the image evenly.

    >>> default_pool(32), default_pool(9), default_pool(12), default_pool(7)
    (8, 3, 3, 7)
    """
    if image_size % 4 == 0:
        return max(1, image_size // 4)
    for cells in (4, 3, 2, 1):
        if image_size % cells == 0:
            return image_size // cells
    return image_size


def build_model(cfg: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> DEQClassifier:
    """The poster's classifier sized for a dataset (pooling to a map of at most 4 x 4, see :func:`default_pool`,
    unless ``cfg.pool`` says otherwise)."""
    c, h, w = image_shape
    if h != w:
        raise ConfigError(f"square images expected, got {h}x{w}")
    pool = cfg.pool or default_pool(h)
    if cfg.arch == "explicit":
        return explicit_classifier(in_channels=c, image_size=h, num_classes=num_classes, channels=cfg.channels,
                                   inner_channels=cfg.inner_channels, groups=cfg.groups, pool=pool, depth=cfg.depth,
                                   channel_sums=cfg.channel_sums)
    return deq_classifier(
        in_channels=c, image_size=h, num_classes=num_classes, channels=cfg.channels,
        inner_channels=cfg.inner_channels, groups=cfg.groups, pool=pool, channel_sums=cfg.channel_sums,
        **cfg.deq_options(),
    )


def _deq(model: nn.Module):
    return getattr(model, "module", model).deq


def _nfe(result) -> float:
    """Mean evaluations of f per sample of a solve (0 when there was none, e.g. an explicit model)."""
    return result.mean_nfe if result is not None else 0.0


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device) -> dict[str, float]:
    """Loss, accuracy, mean forward NFE and wall time of ``model`` on (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = correct = nfe_sum = 0.0
    start = time.perf_counter()
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i: i + batch_size].to(device), y[i: i + batch_size].to(device)
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += float((logits.argmax(1) == yb).sum())
        nfe_sum += _nfe(_deq(model).last_forward) * xb.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    model.train(was_training)
    n = max(1, x.shape[0])
    return {"loss": loss_sum / n, "accuracy": correct / n, "nfe": nfe_sum / n, "time_s": elapsed,
            "count": float(x.shape[0]), "loss_sum": loss_sum, "correct": correct, "nfe_sum": nfe_sum}


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> int:
    """Recompute every BatchNorm's running statistics as the plain average over ``x`` with the
    current weights (train-mode forward passes, no gradients); returns the number of layers reset.

    Running averages with momentum lag behind weights that are still moving, and a DEQ is
    sensitive to that lag: the stem's BatchNorm scales the injection x, and an injection too
    small in eval mode leaves the fixed-point map less contractive, so the eval solves stop
    converging (measured on alms-polarity, 1,000 molecules: stem running variance 0.036 against
    0.0022 recomputed over the 800 training images after 32 steps; eval NFE 30/30 and 48.7% accuracy before, 14.4 and 76.8% after).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
        >>> recalibrate_batchnorm(net, torch.randn(8, 1, 3, 3), 4, torch.device("cpu"))
        1
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers or x.shape[0] == 0:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for i in range(0, x.shape[0], batch_size):
        model(x[i: i + batch_size].to(device))
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.train(was_training)
    return len(layers)


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int, info: D.DistInfo) -> list[torch.Tensor]:
    """This rank's batches for an epoch: a seeded permutation (same on every rank, and
    after a resume), cut to a multiple of the world size and dealt round-robin."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
    perm = perm[: (n // info.world_size) * info.world_size][info.rank:: info.world_size]
    per_rank = cfg.batch_size // info.world_size
    return [perm[i: i + per_rank] for i in range(0, perm.numel(), per_rank)]


def _write_metrics(out: Path, metrics: list[dict[str, float]]) -> None:
    write_csv(metrics, out / "metrics.csv", METRIC_FIELDS)
    atomic_write_text(json.dumps(metrics, indent=2), out / "metrics.json")



def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """One Adam group, or two when the channel-sum readout has its own LR (``--channel-sums-lr-scale``).

    One group whenever the scale is 1 keeps checkpoints of runs without the option loadable.
    """
    readout = getattr(model, "channel_sums", None)
    if readout is None or cfg.channel_sums_lr_scale == 1.0:
        return [{"params": list(model.parameters())}]
    own = {id(p) for p in readout.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in own]},
            {"params": list(readout.parameters()), "lr": cfg.lr * cfg.channel_sums_lr_scale}]

def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    dataset: ImageDataset | None = None,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train the poster's DEQ classifier as ``cfg`` says; returns metrics and a summary.

    Writes to ``cfg.out_dir``: ``metrics.csv``/``metrics.json`` after every epoch,
    ``checkpoint.pt`` (atomic; every epoch and every ``checkpoint_every`` steps),
    and at the end ``model.safetensors``, ``config.json`` and ``summary.json``.
    ``resume=True`` continues from the checkpoint to the same result as an
    uninterrupted run; the settings must be those of the checkpoint (but for
    ``out_dir`` and ``checkpoint_every``). A larger ``epochs`` extends a
    finished run: training goes on from its saved model and optimizer state and
    the cosine schedule is rebuilt for the new total, continuing at the step
    reached (so the LR rises from ``lr_min`` to where a run of the new length
    would be); the summary records it (``extended_from_epochs``, ``extensions``).
    ``stop_after_steps`` stops this process after that many
    optimizer steps, as an interruption would (used by the tests).

    Example:
        >>> import tempfile
        >>> cfg = TrainConfig(dataset="digits", epochs=1, max_train=200, max_test=100,
        ...                   out_dir=tempfile.mkdtemp(prefix="ann-doc-"), channels=16, inner_channels=16,
        ...                   max_iter=10)
        >>> result = train(cfg, progress=False)
        >>> result.completed, 0.0 <= result.summary["test_accuracy"] <= 1.0
        (True, True)
        >>> import shutil; shutil.rmtree(cfg.out_dir)
    """
    cfg.validate()
    info, device = D.setup(cfg.device)
    resume_hint = (f"the last checkpoint (if one was written) is {Path(cfg.out_dir) / CHECKPOINT}: "
                   "run the same command with --resume")
    with D.peer_failures_raise(lambda cause: TrainingError(f"rank {info.rank} of {info.world_size}: {cause}; {resume_hint}"), info):
        return _train(cfg, info, device, resume=resume, progress=progress, dataset=dataset,
                      stop_after_steps=stop_after_steps)


def _train(cfg: TrainConfig, info: D.DistInfo, device: torch.device, *, resume: bool, progress: bool,
           dataset: ImageDataset | None, stop_after_steps: int | None) -> TrainResult:
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a run folder")
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    if not resume and ckpt_path.exists() and info.is_main:
        raise ConfigError(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")
    if cfg.batch_size % info.world_size:
        raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by the {info.world_size} processes")

    ds = dataset or load_dataset(cfg.dataset, cfg.data_dir, **cfg.dataset_options)
    x_train, y_train = ds.x_train[: cfg.max_train], ds.y_train[: cfg.max_train]
    x_test, y_test = ds.x_test[: cfg.max_test], ds.y_test[: cfg.max_test]
    # With a validation split, epochs are judged on it and the test split is evaluated once, at the end.
    validating = ds.has_validation
    x_val, y_val = (ds.x_val[: cfg.max_test], ds.y_val[: cfg.max_test]) if validating else (None, None)
    if cfg.patience and not validating:
        raise ConfigError(f"--patience needs a validation split, and {cfg.dataset!r} has none")

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, ds.image_shape, ds.num_classes).to(device)
    n_params = count_parameters(model)
    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    opt = torch.optim.Adam(_param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(_epoch_batches(x_train.shape[0], cfg, 0, info))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr_min)

    metrics: list[dict[str, float]] = []
    extensions: list[dict[str, int]] = []  # each time --resume extended a finished run with more --epochs
    start_epoch, start_step, train_time = 0, 0, 0.0
    zero_acc = {"loss": 0.0, "correct": 0.0, "count": 0.0, "fnfe": 0.0, "bnfe": 0.0, "steps": 0.0, "time": 0.0}
    acc = dict(zero_acc)
    best: dict[str, Any] = {"epoch": 0, "val_accuracy": -1.0, "val_loss": math.inf, "state": None}
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        version = state.get("format", 1)
        missing = sorted(set(cfg.to_dict()) - set(state["config"]))
        if version > CHECKPOINT_FORMAT or missing:
            why = (f"it has format {version}, newer than this version's {CHECKPOINT_FORMAT}" if version > CHECKPOINT_FORMAT
                   else f"it predates the settings {missing}, so its run behaved as before they existed")
            raise ConfigError(f"cannot resume from {ckpt_path}: {why}. Start a new run with another --out "
                              "(the checkpoint is left as it is).")
        saved = TrainConfig.from_dict(state["config"])
        # --checkpoint-every and --out do not change the result; --epochs may grow (below).
        diffs = setting_differences(saved.to_dict(), cfg.to_dict(), NOT_COMPARED | {"epochs"})
        if diffs:
            raise ConfigError(f"--resume with settings that differ from {ckpt_path}: {'; '.join(diffs)}")
        done = state["epoch"]
        if cfg.epochs != saved.epochs:
            _check_extension(ckpt_path, saved, cfg, state)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        extensions = list(state.get("extensions", []))
        if cfg.epochs != saved.epochs:
            # The finished run's cosine schedule reached --lr-min; the added epochs follow the schedule of the
            # new total from the step reached (the LR rises to the value a run of that length has there).
            at = done * steps_per_epoch
            lrs = [cfg.lr_min + (base - cfg.lr_min) * (1 + math.cos(math.pi * at / sched.T_max)) / 2
                   for base in sched.base_lrs]
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr
            sched.load_state_dict(sched.state_dict() | {"last_epoch": at, "_last_lr": lrs})
            extensions.append({"from_epochs": saved.epochs, "to_epochs": cfg.epochs, "at_step": at})
        else:
            sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start_epoch, start_step = done, state["step"]
        metrics, train_time, acc = state["metrics"], state["train_time"], state["accumulators"]
        best = state["best"]

    cache = None
    if cfg.warm_start:
        bound = {} if cfg.warm_start_max_mb is None else {"max_bytes": int(cfg.warm_start_max_mb * 2**20)}
        cache = WarmStartCache(x_train.shape[0], dtype=torch.float16 if cfg.warm_start_float16 else torch.float32,
                               **bound)
        if resume and ckpt_path.exists() and state.get("warm_start") is not None:
            cache.load_state_dict(state["warm_start"])

    def checkpoint(epoch: int, step: int) -> None:
        if info.is_main:
            atomic_save({
                "format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": torch.get_rng_state(), "epoch": epoch, "step": step,
                "metrics": metrics, "train_time": train_time, "accumulators": acc, "best": best,
                "extensions": extensions, "warm_start": None if cache is None else cache.state_dict(),
            }, ckpt_path)
        D.barrier(info)

    steps_done = 0
    stopped_early = bool(cfg.patience) and best["epoch"] and len(metrics) - best["epoch"] >= cfg.patience
    for epoch in range(start_epoch, cfg.epochs if not stopped_early else start_epoch):
        batches = _epoch_batches(x_train.shape[0], cfg, epoch, info)
        net.train()
        bar = tqdm(range(start_step, len(batches)), desc=f"epoch {epoch + 1}/{cfg.epochs} [{cfg.solver if cfg.arch == 'deq' else cfg.arch}]",
                   disable=not (progress and info.is_main), leave=False)
        for step in bar:
            t0 = time.perf_counter()
            idx = batches[step]
            xb = x_train[idx]
            if cfg.augment:
                xb = random_crop_flip(xb, torch.Generator().manual_seed(hash((cfg.seed, epoch, step)) % 2**31))
            xb, yb = xb.to(device), y_train[idx].to(device)
            z0 = None if cache is None else cache.get(idx)
            logits = net(xb) if z0 is None else net(xb, z0=z0.to(device))
            if cache is not None:
                cache.put(idx, _deq(net).last_forward.z)
            loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            if cfg.correction_states:
                extra = getattr(net, "module", net).last_correction_logits
                loss = loss + cfg.resolved_correction_weight * sum(
                    F.cross_entropy(lg, yb, label_smoothing=cfg.label_smoothing) for lg in extra) / len(extra)
            jac = _deq(net).last_jacobian if cfg.jacobian_reg else None
            if jac is not None:
                loss = loss + cfg.jacobian_reg * jac
            if not torch.isfinite(loss):
                last = _deq(net).last_forward
                raise TrainingError(f"non-finite loss at epoch {epoch + 1}, step {step + 1}"
                                    + (f": {last.message}" if last is not None else ""))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            train_time += dt
            deq = _deq(net)
            acc["loss"] += float(loss.detach()) * yb.numel()
            acc["correct"] += float((logits.argmax(1) == yb).sum())
            acc["count"] += yb.numel()
            acc["fnfe"] += _nfe(deq.last_forward)
            acc["bnfe"] += _nfe(deq.last_backward)
            acc["steps"] += 1
            acc["time"] += dt
            if jac is not None:
                acc["jac"] = acc.get("jac", 0.0) + float(jac.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", nfe=f"{_nfe(deq.last_forward):.1f}")
            steps_done += 1
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < len(batches):
                checkpoint(epoch, step + 1)
            if stop_after_steps is not None and steps_done >= stop_after_steps:
                D.teardown(info)
                return TrainResult(cfg, metrics, {}, out, completed=False)
        start_step = 0
        if cfg.bn_recalibrate:
            # Same samples on every rank (so replicas keep identical buffers); counted as training time.
            t0 = time.perf_counter()
            pick = torch.randperm(x_train.shape[0], generator=torch.Generator().manual_seed(cfg.seed + 7919 * epoch))
            recalibrate_batchnorm(model, x_train[pick[: cfg.bn_recalibrate * cfg.batch_size]], cfg.batch_size, device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            train_time += dt
            acc["time"] += dt
        tot = D.all_sum([acc["loss"], acc["correct"], acc["count"], acc["fnfe"], acc["bnfe"], acc["steps"]], device, info)
        row = {
            "epoch": epoch + 1, "train_loss": tot[0] / tot[2], "train_accuracy": tot[1] / tot[2],
            "epoch_time_s": acc["time"], "forward_nfe": tot[3] / tot[5], "backward_nfe": tot[4] / tot[5],
            "lr": sched.get_last_lr()[0],
        }
        if cfg.jacobian_reg:
            row["jacobian_fro2"] = D.all_sum([acc.get("jac", 0.0)], device, info)[0] / tot[5]
        if validating:
            ev = _sharded_eval(net, x_val, y_val, cfg, device, info)
            row.update(val_loss=ev["loss"], val_accuracy=ev["accuracy"], val_forward_nfe=ev["nfe"])
            if (ev["accuracy"], -ev["loss"]) > (best["val_accuracy"], -best["val_loss"]):
                best = {"epoch": epoch + 1, "val_accuracy": ev["accuracy"], "val_loss": ev["loss"],
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        else:
            ev = _sharded_eval(net, x_test, y_test, cfg, device, info)
            row.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"], test_forward_nfe=ev["nfe"])
        metrics.append(row)
        acc = dict(zero_acc)
        if info.is_main:
            _write_metrics(out, metrics)
            m = metrics[-1]
            if progress:
                split = "val" if validating else "test"
                tqdm.write(f"epoch {epoch + 1}: train acc {m['train_accuracy']:.3f} {split} acc {m[split + '_accuracy']:.3f} "
                           f"time {m['epoch_time_s']:.1f}s NFE fwd {m['forward_nfe']:.1f} bwd {m['backward_nfe']:.1f}")
        stopped_early = bool(cfg.patience) and epoch + 1 - best["epoch"] >= cfg.patience
        checkpoint(epoch + 1, 0)
        if stopped_early:
            break

    if validating and best["state"] is not None:
        model.load_state_dict(best["state"])  # the epoch the validation split chose
    replica_diff = _replica_divergence(model, device, info)
    summary: dict[str, Any] = {}
    if info.is_main:
        inf = evaluate(model, x_test, y_test, cfg.batch_size, device)
        last = metrics[-1]
        summary = {
            "dataset": cfg.dataset, "solver": cfg.solver, "params": n_params,
            "train_accuracy": last["train_accuracy"], "test_accuracy": inf["accuracy"],
            "best_test_accuracy": (inf["accuracy"] if validating
                                   else max(m["test_accuracy"] for m in metrics)),
            "train_time_s": train_time, "inference_time_s": inf["time_s"],
            "inference_time_per_batch_s": inf["time_s"] / max(1, math.ceil(x_test.shape[0] / cfg.batch_size)),
            "forward_nfe": sum(m["forward_nfe"] for m in metrics) / len(metrics),
            "backward_nfe": sum(m["backward_nfe"] for m in metrics) / len(metrics),
            "inference_nfe": inf["nfe"], "epochs": cfg.epochs, "world_size": info.world_size,
            "train_size": int(x_train.shape[0]), "test_size": int(x_test.shape[0]),
            "class_names": ds.class_names, "image_shape": list(ds.image_shape),
            "replica_param_max_diff": replica_diff,
        }
        if extensions:
            summary.update(extended_from_epochs=extensions[0]["from_epochs"], extensions=extensions)
        if validating:
            summary.update(chosen_epoch=best["epoch"], val_accuracy=best["val_accuracy"], val_loss=best["val_loss"],
                           epochs_run=len(metrics), stopped_early=bool(stopped_early), val_size=int(x_val.shape[0]),
                           test_evaluations=1)
        save_model(model, cfg, ds, out)
        atomic_write_text(json.dumps(summary, indent=2), out / "summary.json")
    D.teardown(info)
    return TrainResult(cfg, metrics, summary, out, completed=True)


def _check_extension(ckpt_path: Path, saved: TrainConfig, cfg: TrainConfig, state: dict[str, Any]) -> None:
    """A resume may change --epochs only to extend a finished run; anything else is one line saying why not."""
    done = state["epoch"]
    if cfg.epochs < done:
        raise ConfigError(f"--resume --epochs {cfg.epochs} is fewer than the {done} epochs {ckpt_path} has already "
                          f"trained; a run cannot be shortened (ask for --epochs {saved.epochs}, or more to extend it)")
    if done < saved.epochs:
        raise ConfigError(f"--resume --epochs {cfg.epochs}: {ckpt_path} is an unfinished run of {saved.epochs} epochs "
                          f"({done} done); finish it with --epochs {saved.epochs} --resume, then extend it")
    best = state.get("best") or {}
    if saved.patience and best.get("epoch") and len(state["metrics"]) - best["epoch"] >= saved.patience:
        raise ConfigError(f"--resume --epochs {cfg.epochs}: {ckpt_path} stopped early (--patience {saved.patience}, "
                          f"no better validation accuracy since epoch {best['epoch']}); more epochs would train nothing")


def export_best(run_dir: str | Path, dest: str | Path, dataset: ImageDataset | None = None) -> dict[str, Any]:
    """Save the best-on-validation weights held by an unfinished run's checkpoint as a model folder.

    A long training stopped between sessions keeps, in its checkpoint, the weights of the epoch the
    validation split chose so far; this writes them to ``dest`` (``model.safetensors`` and
    ``config.json``, loadable by :func:`~andersonn.train.saved_model.load_trained`) with ``interim.json``: epochs done, the chosen
    epoch, its validation accuracy, training time so far. The test split is not touched.
    """
    run, dest = Path(run_dir), Path(dest)
    state = load_checkpoint(run / CHECKPOINT)
    best = state.get("best") or {}
    if best.get("state") is None:
        raise ConfigError(f"{run / CHECKPOINT} holds no validated epoch yet (no validation split, or no epoch finished)")
    cfg = TrainConfig.from_dict(state["config"])
    ds = dataset or load_dataset(cfg.dataset, cfg.data_dir, **cfg.dataset_options)
    model = build_model(cfg, ds.image_shape, ds.num_classes)
    model.load_state_dict(best["state"])
    dest.mkdir(parents=True, exist_ok=True)
    save_model(model, cfg, ds, dest)
    info = {"interim": True, "source_run": str(run), "epochs_done": state["epoch"], "epochs_planned": cfg.epochs,
            "chosen_epoch": best["epoch"], "val_accuracy": best["val_accuracy"], "val_loss": best["val_loss"],
            "train_time_s": state["train_time"], "params": count_parameters(model), "metrics": state["metrics"]}
    atomic_write_text(json.dumps(info, indent=2), dest / "interim.json")
    return info


def _replica_divergence(model: nn.Module, device: torch.device, info: D.DistInfo) -> float:
    """Largest difference of any parameter between data-parallel replicas (0.0 when in sync)."""
    if not info.enabled:
        return 0.0
    import torch.distributed as dist

    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).to(device)
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return float((hi - lo).max())


def _sharded_eval(net, x, y, cfg, device, info) -> dict[str, float]:
    shard = torch.arange(x.shape[0])[info.rank:: info.world_size]
    ev = evaluate(net, x[shard], y[shard], cfg.batch_size // info.world_size, device)
    loss, correct, nfe, count = D.all_sum([ev["loss_sum"], ev["correct"], ev["nfe_sum"], ev["count"]], device, info)
    return {"loss": loss / count, "accuracy": correct / count, "nfe": nfe / count}
