"""Command-line interface: a thin layer over andersonn.train, andersonn.study and the ALMS pipelines."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

try:  # recent typer vendors click as typer._click; older typer raises click's own exceptions
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as _click_exc


class _OneLineErrors(TyperGroup):
    """Click's usage errors (bad option value, unknown option, missing argument) as one line on stderr,
    ``error: ...``, with click's exit code (2), like the project's own errors from :func:`_fail`."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _click_exc.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except _click_exc.ClickException as exc:
            msg = " ".join(exc.format_message().split())
            ctx = getattr(exc, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None and ctx.command_path else ""
            typer.secho(f"error: {where}{msg}", fg=typer.colors.RED, err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.secho("error: aborted", fg=typer.colors.RED, err=True)
            sys.exit(1)
        except _boundary_errors() as exc:  # whatever a command let through: still one line, never a traceback
            typer.secho(f"error: {_one_line(exc)}", fg=typer.colors.RED, err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


def _project_errors() -> tuple[type[BaseException], ...]:
    """The project's own error types: their messages are written for the user."""
    from .data import DatasetError
    from .extras import MissingExtraError
    from .parallel import ClusterStartError
    from .solvers import SolverInputError
    from .train import ConfigError, TrainingError

    return (ConfigError, DatasetError, SolverInputError, TrainingError, ClusterStartError, MissingExtraError)


def _boundary_errors() -> tuple[type[BaseException], ...]:
    """What the CLI's one error boundary turns into one line: the project's errors and those of the files it
    reads and writes (OS, JSON, SQLite, pickle, safetensors)."""
    import json
    import pickle
    import sqlite3

    extra: tuple[type[BaseException], ...] = ()
    try:
        from safetensors import SafetensorError

        extra = (SafetensorError,)
    except ImportError:
        pass
    return (*_project_errors(), OSError, json.JSONDecodeError, sqlite3.Error, pickle.UnpicklingError, *extra)


def _one_line(exc: BaseException) -> str:
    """``exc`` as one line: the project's messages as they are; others with their kind, and the path where
    the error has one."""
    if isinstance(exc, _project_errors()):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


app = typer.Typer(cls=_OneLineErrors,
    help="Deep AndersoNN: deep equilibrium networks with Anderson-accelerated fixed points.\n\n"
    "Train DEQ classifiers with forward iteration ('standard') or Anderson ('accelerated'), compare them "
    "as in the poster's results table, and run the residual and m trade-off analyses.\n\n"
    "On Linux/glibc the command serves tensors up to 32 MiB from the C heap and keeps freed memory for "
    "reuse (faster CPU solves, higher resident memory; measured in benchmarks/results/README.md); "
    "ANDERSONN_TUNE_MALLOC=0 turns that off.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)

# Options shared by `train` and `compare`.
Dataset = Annotated[str, typer.Option(help="Registered dataset (see `andersonn datasets`).")]
DataDir = Annotated[Optional[Path], typer.Option(help="Local folder of datasets that need one (e.g. CIFAR-10 batches).")]
Epochs = Annotated[int, typer.Option(min=1, help="Training epochs (with --resume, more than a finished run had extends it; see --resume).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Global batch size (split across torchrun processes).")]
Lr = Annotated[float, typer.Option(help="Adam learning rate; cosine-annealed per batch to --lr-min.")]
LrMin = Annotated[float, typer.Option(help="Learning rate at the end of the cosine schedule.")]
M = Annotated[Optional[int], typer.Option(help="Anderson window m (unset: Anderson's default; the same as --solver-option m=N).")]
Lam = Annotated[Optional[float], typer.Option(help="Anderson regularisation lambda (unset: Anderson's default).")]
Beta = Annotated[Optional[float], typer.Option(help="Anderson mixing beta (unset: Anderson's default).")]
SolverOption = Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE passed to the solver's options, repeatable (e.g. --solver broyden --solver-option memory=10); checked against that solver's options class, whose defaults apply to unset keys.")]
Tol = Annotated[float, typer.Option(help="Forward solve tolerance on ||f(z)-z||/||f(z)||.")]
MaxIter = Annotated[int, typer.Option(help="Forward solve iteration cap.")]
Backward = Annotated[str, typer.Option(help="'ift' (implicit function theorem), 'jfb' (Jacobian-free, one step) or 'phantom' (--phantom-steps damped steps unrolled from z*).")]
WarmStart = Annotated[bool, typer.Option(help="Start each training sample's solve from its fixed point of the previous epoch (a per-sample cache on the CPU; see --warm-start-max-mb).")]
WarmStartF16 = Annotated[bool, typer.Option(help="Keep the warm-start cache in float16 (half the memory).")]
WarmStartMb = Annotated[Optional[float], typer.Option(help="With --warm-start: memory bound of the cache in MiB; samples past it start from zeros (unset: the cache's default, WarmStartCache's max_bytes).")]
CorrectionStates = Annotated[int, typer.Option(help="Fixed-point correction: also put the loss on this many intermediate iterates of each forward solve, evenly spaced over --max-iter, each read through one step of f (0: none; TorchDEQ's n_states - 1).")]
CorrectionWeight = Annotated[Optional[float], typer.Option(help="With --correction-states: weight of the intermediate states' mean loss against the final state's (unset: train.config.DEFAULT_CORRECTION_WEIGHT, TorchDEQ's gamma).")]
PhantomSteps = Annotated[Optional[int], typer.Option(help="With --backward phantom: steps unrolled from z* (unset: the DEQ's default).")]
PhantomDamping = Annotated[Optional[float], typer.Option(help="With --backward phantom: damping d of z <- (1-d) z + d f(z), in (0, 1] (unset: the DEQ's default).")]
BSolver = Annotated[str, typer.Option(help="Adjoint solver; 'same' uses --solver.")]
BTol = Annotated[float, typer.Option(help="Adjoint solve tolerance.")]
BMaxIter = Annotated[int, typer.Option(help="Adjoint solve iteration cap.")]
BnRecal = Annotated[int, typer.Option(help="After each epoch, recompute BatchNorm running statistics over this many training batches with the final weights (0: keep the momentum averages, which lag and can stop eval-mode solves from converging).")]
BCompact = Annotated[bool, typer.Option(help="Drop samples whose adjoint has converged from the IFT backward solve (f is re-applied to the rest); --no-backward-compact evaluates the whole batch every iteration.")]
Seed = Annotated[int, typer.Option(help="Seed for initialisation and data order.")]
MaxTrain = Annotated[Optional[int], typer.Option(help="Use only the first N training images.")]
MaxTest = Annotated[Optional[int], typer.Option(help="Use only the first N test images.")]
Augment = Annotated[bool, typer.Option(help="Random crop + flip augmentation.")]
Resume = Annotated[bool, typer.Option(help="Continue from the checkpoint in --out, with the same settings (--checkpoint-every may differ). A larger --epochs extends a finished run: training goes on from its saved model and optimizer, and the cosine LR schedule is rebuilt for the new total from the step reached (the LR rises from --lr-min to where a run of that length would be), recorded in summary.json as extended_from_epochs. Fewer epochs than done are refused.")]
CkptEvery = Annotated[int, typer.Option(help="Also checkpoint every N steps (0: per epoch only).")]
Device = Annotated[str, typer.Option(help="'auto', 'cpu' or 'cuda'.")]
ImageSize = Annotated[Optional[int], typer.Option(help="Resize images to this size (dataset default if unset).")]
DatasetOption = Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE passed to the dataset's loader, repeatable (e.g. alms-qm9's channels=bond_order,distance or max_molecules=20000); `andersonn datasets` lists each loader's options.")]
LabelSmoothing = Annotated[float, typer.Option(help="Label smoothing of the cross-entropy (0: none).")]
Patience = Annotated[int, typer.Option(help="Stop when validation accuracy has not improved for N epochs (0: train every epoch; needs a dataset with a validation split).")]
Width = Annotated[int, typer.Option(help="Channels of the DEQ state (the poster's CIFAR-10 model: 48).")]
JacobianReg = Annotated[float, typer.Option(help="Weight of a Jacobian penalty ||df/dz||_F^2/dim (one Hutchinson probe at z*) added to the loss, keeping f contractive so solves take fewer iterations (0: none; ~0.1-1 typical; one extra vector-Jacobian product per step).")]
InnerWidth = Annotated[int, typer.Option(help="Channels inside the implicit block (the poster's: 64).")]
ChannelSums = Annotated[bool, typer.Option(help="Also read the image's per-channel pixel sums into the logits (a linear path beside the DEQ, for labels that are global sums such as a molecule's dipole; not in the poster's model).")]
ChannelSumsLr = Annotated[float, typer.Option(help="Learning rate of the --channel-sums readout as a multiple of --lr (a linear read of a few sums needs larger steps than the conv path; ~10 on the drug-like set). Needs --channel-sums.")]


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _require_data_dir(data_dir: Path | None) -> None:
    """``--data-dir`` must name an existing folder when given (a dataset that needs none would ignore it)."""
    from .train import ConfigError

    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir} does not exist (or is not a folder)")


def _config(**kw) -> "TrainConfig":  # noqa: F821
    from .train import ConfigError, TrainConfig

    from .data import parse_dataset_options

    image_size = kw.pop("image_size", None)
    data_dir = kw.pop("data_dir", None)
    _require_data_dir(data_dir)
    options = parse_dataset_options(kw["dataset"], kw.pop("dataset_option", None) or [])
    kw["solver_options"] = _solver_options(kw.get("solver", TrainConfig.solver), kw.pop("solver_option", None) or [],
                                           m=kw.pop("m", None), lam=kw.pop("lam", None), beta=kw.pop("beta", None))
    if image_size is not None:
        options["image_size"] = image_size
    cfg = TrainConfig(**kw, data_dir=str(data_dir) if data_dir else None, dataset_options=options)
    cfg.validate()  # every flag checked before any dataset is loaded or model built
    return cfg


def _solver_options(solver: str, pairs: list[str], **shorthands) -> dict:
    """``--solver-option`` pairs plus the set Anderson shorthands (``--m/--lam/--beta``), checked by the solver's
    options class (an unregistered solver is left for ``TrainConfig.validate`` to name)."""
    from .solvers import SolverInputError, available_solvers, get_solver
    from .train import ConfigError

    given = {k: v for k, v in shorthands.items() if v is not None}
    if solver not in available_solvers():
        return given
    try:
        options = get_solver(solver).Options.parse_pairs(solver, pairs)
    except SolverInputError as exc:
        raise ConfigError(f"--solver-option: {exc}") from None
    for key in given:
        if key in options:
            raise ConfigError(f"--{key} and --solver-option {key}=... both set {key}; give it once")
    if given and solver != "anderson":
        flags = "/".join(f"--{k}" for k in given)
        raise ConfigError(f"{flags}: Anderson options, with no effect with --solver {solver} "
                          "(drop them, use --solver anderson, or pass that solver's own --solver-option)")
    return options | given


def _text_input(path: Path) -> None:
    """One-line error unless ``path`` is a non-empty text file (all molecule/CIF inputs are text)."""
    from .fileio import require_text_file

    try:
        require_text_file(path, "molecules or structures")
    except (OSError, ValueError) as exc:
        _fail(str(exc))


def _output(path: Path, option: str, kind: str) -> None:
    """One-line error, before any work, for an output nothing could be written to (see require_output_path)."""
    from .fileio import require_output_path

    try:
        require_output_path(path, option, kind)
    except ValueError as exc:
        _fail(str(exc))


def _at_least_one(**values) -> None:
    """One-line error for the first set option below 1 (``None``: unset, allowed)."""
    for name, value in values.items():
        if value is not None and value < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1 (or unset), got {value}")


def _windows(text: str) -> list[int]:
    """``--ms 1,3,5`` -> [1, 3, 5]; anything but positive integers is a one-line error."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        _fail(f"--ms {text!r}: expected comma-separated positive integers, e.g. 1,3,5")
    if not values or min(values) < 1:
        _fail(f"--ms {text!r}: every Anderson window must be >= 1 (m = 1 is forward iteration)")
    return values


def _guard(fn, *args, **kwargs):
    """Run ``fn``, turning the project's expected errors into one clear line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except (*_project_errors(), FileNotFoundError) as exc:
        _fail(str(exc))


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="Run folder: metrics, checkpoint, model.")] = Path("runs/train"),
    dataset: Dataset = "digits", data_dir: DataDir = None, image_size: ImageSize = None,
    solver: Annotated[str, typer.Option(help="'anderson' (accelerated) or 'forward' (standard).")] = "anderson",
    m: M = None, lam: Lam = None, beta: Beta = None, solver_option: SolverOption = None, tol: Tol = 1e-3,
    max_iter: MaxIter = 30, backward: Backward = "ift", backward_solver: BSolver = "same", backward_tol: BTol = 1e-3,
    backward_max_iter: BMaxIter = 30, backward_compact: BCompact = True, bn_recalibrate: BnRecal = 5,
    epochs: Epochs = 10, batch_size: BatchSize = 100, lr: Lr = 1e-3, lr_min: LrMin = 1e-6, seed: Seed = 0, max_train: MaxTrain = None,
    max_test: MaxTest = None, augment: Augment = False, resume: Resume = False, checkpoint_every: CkptEvery = 0, device: Device = "auto",
    arch: Annotated[str, typer.Option(help="'deq' (the poster's model) or 'explicit' (baseline CNN, same blocks unrolled).")] = "deq",
    depth: Annotated[int, typer.Option(help="Blocks of the explicit baseline (1: same parameter count as the DEQ).")] = 1,
    dataset_option: DatasetOption = None, label_smoothing: LabelSmoothing = 0.0, patience: Patience = 0,
    channels: Width = 48, inner_channels: InnerWidth = 64, jacobian_reg: JacobianReg = 0.0,
    channel_sums: ChannelSums = False, channel_sums_lr_scale: ChannelSumsLr = 1.0, phantom_steps: PhantomSteps = None, phantom_damping: PhantomDamping = None,
    warm_start: WarmStart = False, warm_start_float16: WarmStartF16 = False, warm_start_max_mb: WarmStartMb = None,
    correction_states: CorrectionStates = 0, correction_weight: CorrectionWeight = None,
) -> None:
    """Train the poster's DEQ classifier. Under `torchrun --nproc_per_node N -m andersonn train` it runs DDP.

    On a dataset with a validation split (alms-qm9) each epoch is scored on it, the best epoch's weights
    are kept, and the test split is evaluated once, at the end."""
    _output(out, "--out", "folder")
    from .train import train as run_train
    from .train.distributed import resolve_device

    cfg = _guard(_config, dataset=dataset, data_dir=data_dir, image_size=image_size, dataset_option=dataset_option,
                  label_smoothing=label_smoothing, patience=patience, channels=channels, inner_channels=inner_channels,
                  jacobian_reg=jacobian_reg, channel_sums=channel_sums, channel_sums_lr_scale=channel_sums_lr_scale, out_dir=str(out), solver=solver, m=m,
                  lam=lam, beta=beta, solver_option=solver_option, tol=tol, max_iter=max_iter, backward=backward, backward_solver=backward_solver,
                  backward_tol=backward_tol, backward_max_iter=backward_max_iter, backward_compact=backward_compact,
                  phantom_steps=phantom_steps, phantom_damping=phantom_damping, warm_start=warm_start,
                  warm_start_float16=warm_start_float16, warm_start_max_mb=warm_start_max_mb,
                  correction_states=correction_states, correction_weight=correction_weight, bn_recalibrate=bn_recalibrate, epochs=epochs, batch_size=batch_size, lr=lr, lr_min=lr_min, seed=seed,
                  max_train=max_train, max_test=max_test, augment=augment, checkpoint_every=checkpoint_every, device=device, arch=arch, depth=depth)
    _guard(resolve_device, cfg.device)
    result = _guard(run_train, cfg, resume=resume)
    if result.summary:
        s = result.summary
        extended = (f" (extended from {s['extended_from_epochs']} to {s['epochs']} epochs, cosine schedule rebuilt "
                    "for the new total)" if s.get("extended_from_epochs") else "")
        typer.echo(f"test accuracy {100 * s['test_accuracy']:.1f}%, train time {s['train_time_s']:.1f}s, "
                   f"inference {s['inference_time_s']:.2f}s; saved to {out}{extended}")


@app.command()
def compare(
    out: Annotated[Path, typer.Option(help="Study folder: report, results.json, CSVs, plots.")] = Path("reports/compare"),
    dataset: Dataset = "digits", data_dir: DataDir = None, image_size: ImageSize = None,
    m: M = None, lam: Lam = None, beta: Beta = None, tol: Tol = 1e-3, max_iter: MaxIter = 30,
    backward: Backward = "ift", backward_tol: BTol = 1e-3, backward_max_iter: BMaxIter = 30,
    backward_compact: BCompact = True, bn_recalibrate: BnRecal = 5, epochs: Epochs = 10,
    batch_size: BatchSize = 100, lr: Lr = 1e-3, lr_min: LrMin = 1e-6, seed: Seed = 0,
    max_train: MaxTrain = None, max_test: MaxTest = None, augment: Augment = False, resume: Resume = False,
    device: Device = "auto", dataset_option: DatasetOption = None,
) -> None:
    """Standard (forward iteration) vs accelerated (Anderson) training: the poster's results table."""
    _output(out, "--out", "folder")
    from .study import compare as run_compare, write_report
    from .train.distributed import resolve_device

    cfg = _guard(_config, dataset=dataset, data_dir=data_dir, image_size=image_size, dataset_option=dataset_option,
                  m=m, lam=lam, beta=beta, tol=tol,
                  max_iter=max_iter, backward=backward, backward_tol=backward_tol, backward_max_iter=backward_max_iter,
                  backward_compact=backward_compact, bn_recalibrate=bn_recalibrate, epochs=epochs,
                  batch_size=batch_size, lr=lr, lr_min=lr_min, seed=seed, max_train=max_train, max_test=max_test,
                  augment=augment, device=device)
    _guard(resolve_device, cfg.device)
    results = _guard(run_compare, cfg, out, resume=resume)
    report = write_report(out, results)
    _print_table(results)
    typer.echo(f"report: {report}")


@app.command()
def residuals(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/residuals"),
    ms: Annotated[str, typer.Option(help="Comma-separated Anderson windows.")] = "1,2,3,5,8",
    batch: Annotated[int, typer.Option(min=1, help="Random inputs in the batch.")] = 32,
    channels: Annotated[int, typer.Option(min=1)] = 48, inner_channels: Annotated[int, typer.Option(min=1)] = 64,
    size: Annotated[int, typer.Option(min=1)] = 32, max_iter: Annotated[int, typer.Option(min=1)] = 60,
    tol: Annotated[float, typer.Option(help="Relative residual to stop at (> 0).")] = 1e-4, seed: int = 0,
    model: Annotated[Optional[Path], typer.Option(help="Use the implicit layer of this trained run folder.")] = None,
) -> None:
    """Relative residual vs iteration on a random input, forward iteration vs Anderson(m)."""
    _output(out, "--out", "folder")
    import torch

    from .fileio import atomic_write_text, write_csv
    from .study import residual_study
    from .study.report import plot_residuals, residual_summary

    if not tol > 0:
        _fail(f"--tol must be > 0, got {tol}")
    windows = _windows(ms)
    torch.manual_seed(seed)
    f, channels, size = _layer(model, channels, inner_channels, size)
    x = torch.randn(batch, channels, size, size)
    rows = residual_study(f, x, ms=windows, tol=tol, max_iter=max_iter)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(residual_summary(rows), out / "residuals_summary.csv")
    atomic_write_text(json.dumps(rows, indent=2), out / "residuals.json")
    plot_residuals(rows, out / "residuals.png")
    for r in rows:
        typer.echo(f"{r['solver']:>14}: NFE to tol {r['nfe_to_tol']:5.1f}, time {r['time_to_tol_s']:.3f}s, "
                   f"residual after {max_iter} its {r['trace'][-1]:.1e}")
    typer.echo(f"saved {out / 'residuals.png'}")


def _layer(model_dir: Path | None, channels: int, inner: int, size: int):
    from .models import ImplicitConvBlock
    from .train.saved_model import load_trained

    if model_dir is None:
        return ImplicitConvBlock(channels, inner).eval(), channels, size
    model, meta = _guard(load_trained, model_dir)
    mc = meta["model"]
    return model.deq.f, mc["channels"], mc["image_size"]


@app.command("m-tradeoff")
def m_tradeoff_cmd(
    model: Annotated[Path, typer.Option(help="Trained run folder (from `train` or `compare`).")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/m-tradeoff"),
    ms: Annotated[str, typer.Option(help="Comma-separated Anderson windows.")] = "1,2,3,5,8",
    data_dir: DataDir = None, max_test: MaxTest = None,
) -> None:
    """Test accuracy, inference time and NFE against the Anderson window m, for a trained model."""
    _output(out, "--out", "folder")
    from .data import load_dataset
    from .fileio import write_csv
    from .study import m_tradeoff

    windows = _windows(ms)
    _at_least_one(max_test=max_test)
    _guard(_require_data_dir, data_dir)
    from .train.saved_model import require_model_dir

    _guard(require_model_dir, model)  # both files, before the dataset is loaded for it
    try:
        cfg = json.loads((model / "config.json").read_text())["config"]
    except (ValueError, KeyError, TypeError) as exc:
        _fail(f"{model / 'config.json'}: not a model config written by andersonn train ({type(exc).__name__}: {exc})")
    ds = _guard(load_dataset, cfg["dataset"], data_dir or cfg.get("data_dir"), **cfg.get("dataset_options", {}))
    rows = _guard(m_tradeoff, model, ds, ms=windows, max_test=max_test)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "m_tradeoff.csv")
    for r in rows:
        typer.echo(f"{r['solver']:>14}: accuracy {100 * r['test_accuracy']:.1f}%, time {r['inference_time_s']:.2f}s, NFE {r['inference_nfe']:.1f}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/demo"),
    dataset: Annotated[str, typer.Option(help="'auto' picks the ALMS polarity set when it loads, else digits.")] = "auto",
    epochs: Epochs = 4, max_train: MaxTrain = None, max_test: MaxTest = None, resume: Resume = True,
) -> None:
    """The whole study on the embedded default data: compare, residuals, m trade-off, report."""
    _output(out, "--out", "folder")
    from .study.demo import run_demo

    _at_least_one(epochs=epochs, max_train=max_train, max_test=max_test)
    from .data import available_datasets

    if dataset != "auto" and dataset not in available_datasets():
        _fail(f"--dataset {dataset!r} is not a registered dataset (see `andersonn datasets`)")
    report = _guard(run_demo, out, dataset=dataset, epochs=epochs, max_train=max_train, max_test=max_test,
                    resume=resume)
    typer.echo(f"report: {report} (and {report.with_suffix('.html')})")


@app.command()
def label(
    input_file: Annotated[Path, typer.Argument(help="Molecules: CSV with name,smiles, a SMILES file, or an SDF.")],
    method: Annotated[str, typer.Option(help="'gfn2' (GFN2-xTB via tblite, ~0.1-1 s a molecule) or a DFT method (PySCF, minutes).")] = "gfn2",
    cache: Annotated[Path, typer.Option(help="Persistent label cache (SQLite, keyed by InChIKey and method); survives kills.")] = Path("cache/chem_labels.sqlite"),
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (tcp://host:port); default: a local cluster.")] = None,
    n_workers: Annotated[Optional[int], typer.Option(help="Local cluster workers (processes, 1 thread each).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the labels to this CSV.")] = None,
    conformers: Annotated[Optional[int], typer.Option(help="Conformers per molecule (default: the library's).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Label only the first N molecules.")] = None,
) -> None:
    """Compute dipole-moment labels with a physics code, in parallel on Dask, cached and resumable."""
    _output(cache, "--cache", "file")
    if out is not None:
        _output(out, "--out", "file")
    from .extras import require_extra

    _at_least_one(n_workers=n_workers, conformers=conformers, limit=limit)
    _text_input(input_file)
    _guard(require_extra, "chem", "labelling molecules", ["rdkit", "tblite"] + (["pyscf"] if method == "b3lyp" else []))
    from .chem.labels import METHODS, label_file

    if method not in METHODS:
        _fail(f"--method {method!r} is not a labelling method; choose one of {', '.join(METHODS)}")
    kwargs = {"n_conformers": conformers} if conformers else {}
    stats: dict[str, int] = {}
    try:
        _guard(label_file, input_file, method=method, cache_path=cache, scheduler=scheduler,
               n_workers=n_workers, output_path=out, limit=limit, stats=stats, **kwargs)
    except ValueError as exc:
        _fail(str(exc))
    why = (f" (reasons in {out})" if out else " (pass --out FILE.csv for the reasons)") if stats["failed"] else ""
    typer.echo(f"{stats['labels']} labels: {stats['cached']} from the cache, {stats['computed']} computed, "
               f"{stats['failed']} failed{why}")
    if out:
        typer.echo(f"saved {out}")


@app.command()
def screen(
    paths: Annotated[list[Path], typer.Argument(help="CIF files (pores) or molecule files: CSV name,smiles or .smi (molecules).")],
    model: Annotated[Optional[Path], typer.Option(help="Trained run folder (e.g. reports/pores/accelerated); default: the models shipped with the package for --task (molecules: the alms-qm9 DEQ for up to 9 heavy atoms, the alms-druglike one for up to 32; pores: the alms-pores DEQ).")] = None,
    task: Annotated[str, typer.Option(help="'auto' (from the model's dataset; without --model: pores when every input is a .cif, else molecules), 'pores' or 'molecules'.")] = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Write the rows to this .csv or .json.")] = None,
    with_labels: Annotated[bool, typer.Option(help="Molecules: also compute the GFN2-xTB dipole.")] = False,
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (tcp://host:port) for building molecule images; default: a local cluster ('synchronous': in this process).")] = None,
    n_workers: Annotated[Optional[int], typer.Option(help="Local cluster workers (processes, 1 thread each).")] = None,
) -> None:
    """Classify MOF structures by pore size or molecules by polarity with a trained ALMS model.

    Molecules: SMILES -> RDKit conformer (lowest MMFF94 energy of 10 ETKDG) -> GFN2-xTB charges -> image ->
    DEQ, images built in parallel; every row has the class, its probability and what the class means;
    molecules that fail are listed with their line and reason, the rest go on."""
    if out is not None:
        _output(out, "--out", "file")
    from .screening import screen as run_screen, write_rows

    for p in paths:
        _text_input(p)
    if task not in ("auto", "pores", "molecules"):
        _fail(f"--task must be 'auto', 'pores' or 'molecules', got {task!r}")
    _at_least_one(n_workers=n_workers)
    if model is not None:  # refused before any molecule is read or imaged
        from .train.saved_model import require_model_dir

        _guard(require_model_dir, model)
    timing: dict[str, float] = {}
    try:
        rows = _guard(run_screen, paths, model, task=task, with_labels=with_labels, scheduler=scheduler,
                      n_workers=n_workers, progress=True, timing=timing)
    except ValueError as exc:
        _fail(str(exc))
    for r in rows:
        name = r.get("name") or r.get("path")
        if "error" in r and r["error"]:
            typer.secho(f"{name}: skipped ({r['error']})", fg=typer.colors.YELLOW)
            continue
        p = r.get("probability")
        if p is None:
            p = (r.get("probabilities") or {}).get(r["predicted_class"], float("nan"))
        extra = f"  admits: {r['admits']}" if r.get("admits") else ""
        dip = f"  xTB dipole {r['xtb_dipole_debye']:.2f} D" if isinstance(r.get("xtb_dipole_debye"), float) else ""
        by = f", {r['model']}" if r.get("model") else ""
        typer.echo(f"{name}: {r['predicted_class']} (p={p:.2f}{by}){extra}{dip}")
    ok = sum(1 for r in rows if not r.get("error"))
    rate = f", {timing['molecules_per_s']:.1f} molecules/s" if timing.get("molecules_per_s") else ""
    typer.echo(f"{ok}/{len(rows)} classified{rate}")
    if out:
        write_rows(rows, out)
        typer.echo(f"saved {out}")
    if rows and ok == 0:
        _fail("no input could be classified (reasons above)")


@app.command()
def datasets() -> None:
    """List the registered datasets."""
    from .data import available_datasets

    for name, desc in available_datasets().items():
        typer.echo(f"{name:16s} {desc}")


def _print_table(results: dict) -> None:
    from .study.report import table_rows

    typer.echo(f"{'':34s} {'standard':>14s} {'accelerated':>14s}")
    for q, s, a in table_rows(results):
        typer.echo(f"{q:34s} {s:>14s} {a:>14s}")


def main() -> None:
    # Large tensors from glibc's heap instead of one mmap each: faster CPU solves (andersonn.runtime;
    # figures in benchmarks/results/README.md; ANDERSONN_TUNE_MALLOC=0 turns it off).
    from .runtime import tune_cpu_allocator

    tune_cpu_allocator()
    app()


if __name__ == "__main__":
    main()
