"""Report folder: results.json, CSVs, PNG plots, report.md and a standalone report.html."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..fileio import atomic_write_text, write_csv  # noqa: E402

COLORS = {"standard": "tab:red", "accelerated": "tab:blue"}


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(quantity, standard, accelerated) rows in the poster's order."""
    s, a = results["standard"], results["accelerated"]
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    return [
        ("Number of parameters", f"{s['params']:,}", f"{a['params']:,}"),
        ("Training accuracy", pct(s["train_accuracy"]), pct(a["train_accuracy"])),
        ("Testing accuracy", pct(s["test_accuracy"]), pct(a["test_accuracy"])),
        ("Training time [s]", f"{s['train_time_s']:.1f}", f"{a['train_time_s']:.1f}"),
        ("Inference time, test set [s]", f"{s['inference_time_s']:.2f}", f"{a['inference_time_s']:.2f}"),
        ("Forward NFE per sample (train)", f"{s['forward_nfe']:.1f}", f"{a['forward_nfe']:.1f}"),
        ("Backward NFE per sample (train)", f"{s['backward_nfe']:.1f}", f"{a['backward_nfe']:.1f}"),
        ("Speedup, training", "1.00", f"{results['speedup_train']:.2f}"),
        *_epoch_rows(results),
        ("Speedup, inference", "1.00", f"{results['speedup_inference']:.2f}"),
        ("Compute saved (NFE / time)", "-",
         f"{pct(results['compute_saved']['by_nfe'])} / {pct(results['compute_saved']['by_time'])}"),
    ]


def _epoch_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Epochs trained and the per-epoch speedup, where the table has them: early stopping can end the runs
    at different epochs, and then the whole-run speedup alone would credit the one that stopped sooner."""
    if "epochs_run" not in results:
        return []
    n = results["epochs_run"]
    return [("Epochs trained", str(n["standard"]), str(n["accelerated"])),
            ("Speedup, training, per epoch", "1.00", f"{results['speedup_train_per_epoch']:.2f}")]


# One distinct (line style, marker) per series, so identical curves (e.g. standard and accelerated with the
# same accuracy every epoch) stay visible on top of each other: different dash patterns, and hollow large
# markers for standard under small filled ones for accelerated.  Markers also make a one-epoch run visible
# (a line needs two points; a marker needs one).
SERIES_STYLE = {
    ("standard", "train"): dict(ls=(0, (6, 3)), marker="o", ms=8, mfc="none", lw=1.5),
    ("standard", "test"): dict(ls="-", marker="s", ms=8, mfc="none", lw=1.5),
    ("accelerated", "train"): dict(ls=(0, (1, 2)), marker="x", ms=6, lw=2.0),
    ("accelerated", "test"): dict(ls=(0, (4, 2, 1, 2)), marker="^", ms=5, lw=2.0),
}
_FALLBACK_MARKERS = "Dv<>ph*"


def accuracy_figure(history: dict[str, list[dict]]):
    """Accuracy-vs-epoch :class:`~matplotlib.figure.Figure` (not saved, not closed).

    >>> h = {"standard": [{"epoch": 1, "train_accuracy": 0.5, "test_accuracy": 0.4}],
    ...      "accelerated": [{"epoch": 1, "train_accuracy": 0.5, "test_accuracy": 0.4}]}
    >>> fig = accuracy_figure(h)
    >>> [ln.get_marker() for ln in fig.axes[0].get_lines()]
    ['o', 's', 'x', '^']
    >>> plt.close(fig)
    """
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    extra = 0
    for label, rows in history.items():
        ep = [r["epoch"] for r in rows]
        for split in ("train", "test"):
            style = SERIES_STYLE.get((label, split))
            if style is None:
                style = dict(ls="-" if split == "test" else "--", marker=_FALLBACK_MARKERS[extra % len(_FALLBACK_MARKERS)], ms=5)
                extra += 1
            ax.plot(ep, [r[f"{split}_accuracy"] for r in rows], color=COLORS.get(label), label=f"{label} {split}", **style)
    epochs = sorted({r["epoch"] for rows in history.values() for r in rows})
    if 0 < len(epochs) <= 12:
        ax.set_xticks(epochs)              # few epochs: exactly one tick per epoch, no 0.5 / 1.5 ...
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch"); ax.set_ylabel("accuracy"); ax.grid(alpha=0.3); ax.legend()
    ax.set_title("Accuracy vs epoch\nforward iteration (standard) vs Anderson (accelerated)", fontsize=10)
    fig.tight_layout()
    return fig


def _plot_accuracy(history: dict[str, list[dict]], path: Path) -> None:
    fig = accuracy_figure(history)
    fig.savefig(path, dpi=120); plt.close(fig)


def residual_summary(rows: list[dict]) -> list[dict]:
    """Rows of :func:`~andersonn.study.residual_study` without their ``trace`` (one CSV line per solver).

    >>> residual_summary([{"solver": "forward", "nfe_to_tol": 30, "trace": [1.0, 0.5]}])
    [{'solver': 'forward', 'nfe_to_tol': 30}]
    """
    return [{k: v for k, v in r.items() if k != "trace"} for r in rows]


def plot_residuals(rows: list[dict], path: str | Path) -> None:
    """Relative residual against iteration, one line per solver of :func:`~andersonn.study.residual_study`
    (forward iteration in black), saved as a PNG at ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        style = "k-" if r["method"] == "forward" else "-"
        ax.semilogy(range(1, len(r["trace"]) + 1), r["trace"], style, label=r["solver"])
    ax.set_xlabel("iteration (evaluations of f)"); ax.set_ylabel("relative residual ||f(z)-z|| / ||f(z)||")
    ax.set_title("Residual vs iteration, random input"); ax.grid(alpha=0.3, which="both"); ax.legend()
    fig.tight_layout(); fig.savefig(path, dpi=120); plt.close(fig)


def _m_panel(ax, rows: list[dict], metric: str, metric_label: str, seconds: str, title: str) -> None:
    """One m trade-off panel: ``metric`` of Anderson(m) against m (forward as a dashed line) and time on a twin axis."""
    aa = [r for r in rows if r["m"] is not None]
    fw = next(r for r in rows if r["m"] is None)
    ms = [r["m"] for r in aa]
    ax.plot(ms, [r[metric] for r in aa], "o-", label=f"Anderson {metric_label}")
    ax.axhline(fw[metric], color="k", ls="--", label=f"forward {metric_label}")
    twin = ax.twinx()
    twin.plot(ms, [r[seconds] for r in aa], "s-", color="tab:orange", label="time [s]")
    ax.set_xlabel("m"); ax.set_ylabel(metric_label); twin.set_ylabel("seconds"); ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8); twin.legend(loc="upper right", fontsize=8)


def _plot_m(random_rows: list[dict], trained_rows: list[dict], path: Path) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    _m_panel(a1, random_rows, "nfe_to_tol", "NFE to tol", "time_to_tol_s", "Random input")
    _m_panel(a2, trained_rows, "test_accuracy", "test accuracy", "inference_time_s", "Trained model, test set")
    fig.tight_layout(); fig.savefig(path, dpi=120); plt.close(fig)


def _plot_speedup(results: dict[str, Any], path: Path) -> None:
    s, a = results["standard"], results["accelerated"]
    names = ["train time [s]", "inference time [s]", "NFE / step"]
    sv = [s["train_time_s"], s["inference_time_s"], s["forward_nfe"] + s["backward_nfe"]]
    av = [a["train_time_s"], a["inference_time_s"], a["forward_nfe"] + a["backward_nfe"]]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.5))
    for ax, n, x, y in zip(axes, names, sv, av):
        ax.bar(["standard", "accelerated"], [x, y], color=[COLORS["standard"], COLORS["accelerated"]])
        ax.set_title(n)
    fig.suptitle(f"Accelerated vs standard: {results['speedup_train']:.2f}x faster training")
    fig.tight_layout(); fig.savefig(path, dpi=120); plt.close(fig)


def write_report(out_dir: str | Path, results: dict[str, Any], residual_rows: list[dict] | None = None,
                 m_random_rows: list[dict] | None = None, m_trained_rows: list[dict] | None = None) -> Path:
    """Write every artefact of the study into ``out_dir`` and return the path of report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history = results.get("history", {})
    core = {k: v for k, v in results.items() if k != "history"}
    atomic_write_text(json.dumps(core, indent=2), out / "results.json")
    rows = table_rows(results)
    write_csv([{"quantity": q, "standard": s, "accelerated": a} for q, s, a in rows], out / "results_table.csv")
    figures: list[tuple[str, str]] = []
    if history:
        write_csv([{"solver": k, **r} for k, v in history.items() for r in v], out / "epochs.csv")
        _plot_accuracy(history, out / "accuracy_vs_epoch.png"); figures.append(("Accuracy vs epoch", "accuracy_vs_epoch.png"))
    _plot_speedup(results, out / "speedup.png"); figures.append(("Speedup and compute", "speedup.png"))
    if residual_rows:
        n = max(len(r["trace"]) for r in residual_rows)
        write_csv([
            {"iteration": i + 1, **{r["solver"]: (r["trace"][i] if i < len(r["trace"]) else "") for r in residual_rows}}
            for i in range(n)], out / "residuals.csv")
        write_csv(residual_summary(residual_rows), out / "residuals_summary.csv")
        plot_residuals(residual_rows, out / "residuals.png"); figures.append(("Residual vs iteration", "residuals.png"))
    if m_random_rows and m_trained_rows:
        write_csv(residual_summary(m_random_rows), out / "m_tradeoff_random_input.csv")
        write_csv(m_trained_rows, out / "m_tradeoff_trained.csv")
        _plot_m(m_random_rows, m_trained_rows, out / "m_tradeoff.png"); figures.append(("The m trade-off", "m_tradeoff.png"))

    title = f"Deep AndersoNN study: {results['dataset']}"
    ds = results.get("dataset_summary", {})
    intro = (f"Standard = forward iteration, accelerated = Anderson; same data, seed, model and schedule. "
             f"Dataset: {ds.get('train', '?')} training / {ds.get('test', '?')} test images of shape "
             f"{ds.get('image_shape', '?')}.")
    md = [f"# {title}", "", intro, "", "| Quantity | Standard | Accelerated |", "|---|---|---|"]
    md += [f"| {q} | {s} | {a} |" for q, s, a in rows]
    for name, file in figures:
        md += ["", f"## {name}", "", f"![{name}]({file})"]
    if m_trained_rows:
        md += ["", "| Solver at inference | Test accuracy | Inference time [s] | NFE |", "|---|---|---|---|"]
        md += [f"| {r['solver']} | {100 * r['test_accuracy']:.1f}% | {r['inference_time_s']:.2f} | {r['inference_nfe']:.1f} |"
               for r in m_trained_rows]
    atomic_write_text("\n".join(md) + "\n", out / "report.md")

    def img(file: str) -> str:
        data = base64.b64encode((out / file).read_bytes()).decode()
        return f'<img alt="{html.escape(file)}" src="data:image/png;base64,{data}" style="max-width:100%">'

    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>",
            "<table border=1 cellpadding=4><tr><th>Quantity</th><th>Standard</th><th>Accelerated</th></tr>"]
    body += [f"<tr><td>{html.escape(q)}</td><td>{html.escape(s)}</td><td>{html.escape(a)}</td></tr>" for q, s, a in rows]
    body.append("</table>")
    for name, file in figures:
        body += [f"<h2>{html.escape(name)}</h2>", img(file)]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            "</title></head><body style='font-family:sans-serif;max-width:960px;margin:auto'>" + "\n".join(body) + "</body></html>")
    atomic_write_text(page, out / "report.html")
    return out / "report.md"


def plot_threshold_report(results: dict[str, Any], out: str | Path, margin_label: str = "|target - threshold|") -> None:
    """The figures of a threshold-task report (``results`` as the ALMS report scripts write it: ``runs``
    of :func:`~andersonn.study.evaluation.score_trained_run` entries, ``baselines`` with a ``test`` entry,
    ``split``): ``accuracy_margin_calibration.png`` (accuracy against ``margin_label``, and calibration)
    and, for runs with per-epoch curves, ``accuracy_vs_epoch.png`` (validation accuracy against epoch and
    training time).

    >>> import tempfile
    >>> rows = [{"low": 0.0, "high": 0.5, "n": 4, "accuracy": 0.75}, {"low": 0.5, "high": 100.0, "n": 6, "accuracy": 1.0}]
    >>> run = {"accuracy_by_margin": rows, "calibration": [{"n": 10, "predicted": 0.4, "observed": 0.5}],
    ...        "val_accuracy_by_epoch": [0.8, 0.9], "epoch_times_s": [60.0, 60.0]}
    >>> d = Path(tempfile.mkdtemp()); plot_threshold_report({"runs": {"deq": run}, "baselines": {}, "split": "test"}, d)
    >>> sorted(p.name for p in d.glob("*.png"))
    ['accuracy_margin_calibration.png', 'accuracy_vs_epoch.png']
    """
    out = Path(out)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [(k, v) for k, v in results["runs"].items()] + [(k, v["test"]) for k, v in results["baselines"].items()
                                                             if isinstance(v, dict) and "test" in v]
    for name, m in series:
        rows = m["accuracy_by_margin"] if "accuracy_by_margin" in m else None
        if not rows:
            continue
        xs = [f"{r['low']}-{r['high'] if r['high'] < 100 else ''}" for r in rows]
        a1.plot(xs, [r["accuracy"] for r in rows], "-o", ms=3, label=name)
    a1.set_xlabel(margin_label)
    a1.set_ylabel(f"{results['split']} accuracy")
    a1.set_title("Where the errors are: accuracy against the distance from the threshold")
    a1.legend(fontsize=7)
    a1.grid(alpha=0.3)
    for name, m in results["runs"].items():
        cal = [r for r in m["calibration"] if r["n"]]
        a2.plot([r["predicted"] for r in cal], [r["observed"] for r in cal], "-o", ms=3, label=name)
    a2.plot([0, 1], [0, 1], "k--", lw=0.8)
    a2.set_xlabel(f"predicted P({results.get('positive_class', 'class 1')})")
    a2.set_ylabel(f"observed fraction {results.get('positive_class', 'class 1')}")
    a2.set_title(f"Calibration ({results['split']} split)")
    a2.legend(fontsize=7)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_margin_calibration.png", dpi=110)
    plt.close(fig)

    plot_accuracy_vs_epoch(results["runs"], out / "accuracy_vs_epoch.png",
                           training_note=results.get("training_note", ""))


def plot_accuracy_vs_epoch(runs: dict[str, Any], path: str | Path, title: str = "Accuracy vs epoch",
                           training_note: str = "") -> bool:
    """Validation accuracy against epoch and against cumulative training time (``training_note`` goes in
    the time axis label, e.g. ", one thread each"), one line style per run so identical curves stay
    visible. ``runs``: name -> entry with ``val_accuracy_by_epoch`` and ``epoch_times_s``; runs without
    validation accuracies are left out. Returns whether a figure was written (``False`` when none has any).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.png"
    >>> plot_accuracy_vs_epoch({"deq": {"val_accuracy_by_epoch": [0.8, 0.9], "epoch_times_s": [60.0, 60.0]},
    ...                         "gbm": {}}, p), p.exists()
    (True, True)
    """
    import numpy as np

    deqs = {k: v for k, v in runs.items() if any(a is not None for a in v.get("val_accuracy_by_epoch") or [])}
    if not deqs:
        return False
    fig, (b1, b2) = plt.subplots(1, 2, figsize=(12, 4.2))
    styles = ["-o", "--s", ":^", "-.d", "-v", "--x"]
    for k, (name, m) in enumerate(deqs.items()):
        ep = list(range(1, len(m["val_accuracy_by_epoch"]) + 1))
        b1.plot(ep, m["val_accuracy_by_epoch"], styles[k % len(styles)], ms=4, label=name)
        b2.plot(np.cumsum(m["epoch_times_s"]) / 60, m["val_accuracy_by_epoch"], styles[k % len(styles)], ms=4, label=name)
    for ax in (b1, b2):
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    b1.set_xlabel("epoch")
    b1.set_xticks(range(1, max(len(m["val_accuracy_by_epoch"]) for m in deqs.values()) + 1))
    b2.set_xlabel(f"training time (min{training_note})")
    b1.set_title(title)
    b2.set_title("accuracy vs training time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

