"""The study: results table schema, report files, residual and m analyses."""

import json

import torch

from andersonn.models import ImplicitConvBlock
from andersonn.study import compare, residual_study, write_report
from andersonn.study.m_tradeoff import m_tradeoff
from andersonn.data import load_dataset
from andersonn.train import TrainConfig

TINY = dict(dataset="digits", dataset_options={"image_size": 8}, max_train=100, max_test=50, channels=16,
            inner_channels=16, batch_size=50, max_iter=8, backward_max_iter=8, tol=1e-2, backward_tol=1e-2, epochs=2)


def test_compare_writes_report_with_schema(tmp_path):
    results = compare(TrainConfig(**TINY), tmp_path, progress=False)
    x = torch.randn(4, 16, 8, 8)
    rows = residual_study(ImplicitConvBlock(16, 16), x, ms=(2, 5), max_iter=15)
    trained = m_tradeoff(tmp_path / "accelerated", load_dataset("digits", image_size=8), ms=(2, 5), max_test=50)
    report = write_report(tmp_path, results, rows, rows, trained)

    data = json.loads((tmp_path / "results.json").read_text())
    assert {"dataset", "standard", "accelerated", "speedup_train", "speedup_inference", "compute_saved"} <= set(data)
    for block in ("standard", "accelerated"):
        assert {"params", "train_accuracy", "test_accuracy", "train_time_s", "inference_time_s",
                "forward_nfe", "backward_nfe"} <= set(data[block])
    assert data["standard"]["params"] == data["accelerated"]["params"] > 0
    assert data["speedup_train"] == data["standard"]["train_time_s"] / data["accelerated"]["train_time_s"]
    assert set(data["compute_saved"]) == {"by_nfe", "by_time"}
    for name in ("report.md", "report.html", "results_table.csv", "epochs.csv", "residuals.csv",
                 "accuracy_vs_epoch.png", "residuals.png", "m_tradeoff.png", "speedup.png", "m_tradeoff_trained.csv"):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    md = report.read_text()
    assert "| Number of parameters |" in md and "![Residual vs iteration](residuals.png)" in md
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    epochs = (tmp_path / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 1 + 2 * 2  # header + 2 epochs x 2 solvers


def test_residual_study_anderson_beats_forward_on_poster_layer():
    torch.manual_seed(0)
    f = ImplicitConvBlock(16, 32, init_std=0.01)
    rows = residual_study(f, torch.randn(8, 16, 8, 8), ms=(5,), tol=1e-4, max_iter=40)
    fwd, aa = rows
    assert len(fwd["trace"]) == len(aa["trace"]) == 40
    assert aa["trace"][-1] < fwd["trace"][-1]
    assert aa["nfe_to_tol"] < fwd["nfe_to_tol"]


def test_compare_resume_refuses_finished_runs_made_with_other_settings(tmp_path):
    import pytest

    from andersonn.train import ConfigError

    first = compare(TrainConfig(**(TINY | {"epochs": 1})), tmp_path, progress=False)
    assert first["dataset_summary"]["train"] == 100 and first["dataset_summary"]["test"] == 50  # what was used
    again = compare(TrainConfig(**(TINY | {"epochs": 1})), tmp_path, resume=True, progress=False)
    assert again["standard"] == first["standard"]  # same settings: reused, nothing retrained
    with pytest.raises(ConfigError, match=r"finished run with other settings: --lr 0.001 \(saved\) vs 0.01 \(asked\); "):
        compare(TrainConfig(**(TINY | {"epochs": 1, "lr": 0.01})), tmp_path, resume=True, progress=False)
    # checkpoint cadence does not change the result: not compared, the runs are reused
    cadence = compare(TrainConfig(**(TINY | {"epochs": 1, "checkpoint_every": 1})), tmp_path, resume=True, progress=False)
    assert cadence["standard"] == first["standard"]
    # more epochs: each finished run is extended (see test_train's extension test), not refused
    longer = compare(TrainConfig(**(TINY | {"epochs": 2})), tmp_path, resume=True, progress=False)
    assert [len(longer["history"][k]) for k in ("standard", "accelerated")] == [2, 2]
    assert longer["history"]["standard"][0] == first["history"]["standard"][0]
    assert json.loads((tmp_path / "standard" / "summary.json").read_text())["extended_from_epochs"] == 1


def _fake_history(epochs, same=True):
    rows = [{"epoch": e, "train_accuracy": 0.5 + 0.1 * e, "test_accuracy": 0.4 + 0.1 * e} for e in epochs]
    return {"standard": rows, "accelerated": [dict(r) for r in rows] if same else
            [{**r, "test_accuracy": r["test_accuracy"] - 0.05} for r in rows]}


def test_accuracy_plot_identical_series_stay_distinguishable():
    import matplotlib.pyplot as plt
    from andersonn.study.report import accuracy_figure
    fig = accuracy_figure(_fake_history([1, 2, 3]))
    try:
        lines = fig.axes[0].get_lines()
        assert len(lines) == 4
        # Line2D.get_linestyle() reports any custom dash tuple as "--"; the dash pattern itself is private
        dash = lambda ln: repr(getattr(ln, "_unscaled_dash_pattern", None) or ln.get_linestyle())  # noqa: E731
        styles = [(ln.get_label(), dash(ln), ln.get_marker()) for ln in lines]
        assert len({ln.get_marker() for ln in lines}) == 4, styles      # every series its own marker shape
        assert len({dash(ln) for ln in lines}) == 4, styles             # and its own dash pattern
        # the same accuracy for standard and accelerated: same data, different look
        std, acc = [ln for ln in lines if ln.get_label() == "standard test"], \
                   [ln for ln in lines if ln.get_label() == "accelerated test"]
        assert list(std[0].get_ydata()) == list(acc[0].get_ydata())
        assert std[0].get_marker() != acc[0].get_marker()
        assert std[0].get_markersize() != acc[0].get_markersize()
    finally:
        plt.close(fig)


def test_accuracy_plot_one_epoch_shows_markers_and_integer_ticks():
    import matplotlib.pyplot as plt
    from andersonn.study.report import accuracy_figure
    fig = accuracy_figure(_fake_history([1]))
    try:
        ax = fig.axes[0]
        for ln in ax.get_lines():
            assert len(ln.get_xdata()) == 1
            assert ln.get_marker() not in (None, "", "None", " "), ln.get_label()
            assert ln.get_markersize() > 0
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)


def test_accuracy_plot_epoch_ticks_are_integers():
    import matplotlib.pyplot as plt
    from andersonn.study.report import accuracy_figure
    for epochs in ([1, 2], [1, 2, 3], list(range(1, 8)), list(range(1, 31))):
        fig = accuracy_figure(_fake_history(epochs, same=False))
        try:
            ax = fig.axes[0]
            fig.canvas.draw()
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)
        finally:
            plt.close(fig)


def test_report_module_docstring_examples():
    import doctest
    import andersonn.study.report as report
    res = doctest.testmod(report)
    assert res.attempted > 0 and res.failed == 0
