"""The study: results table schema, report files, residual and m analyses."""

import json
import os

import pytest
import torch

from andersonn.models import ImplicitConvBlock
from andersonn.study import compare, residual_study, write_report
from andersonn.study.m_tradeoff import m_tradeoff
from andersonn.data import load_dataset
from andersonn.train import TrainConfig

TINY = dict(dataset="digits", dataset_options={"image_size": 8}, max_train=100, max_test=50, channels=16,
            inner_channels=16, batch_size=50, max_iter=8, backward_max_iter=8, tol=1e-2, backward_tol=1e-2, epochs=2)


def test_compare_writes_report_with_schema(tmp_path):
    old_umask = os.umask(0o027)  # every artefact follows the umask (mkstemp and safetensors alone give 0600)
    try:
        results = compare(TrainConfig(**TINY), tmp_path, progress=False)
        x = torch.randn(4, 16, 8, 8)
        rows = residual_study(ImplicitConvBlock(16, 16), x, ms=(2, 5), max_iter=15)
        trained = m_tradeoff(tmp_path / "accelerated", load_dataset("digits", image_size=8), ms=(2, 5), max_test=50)
        report = write_report(tmp_path, results, rows, rows, trained)
    finally:
        os.umask(old_umask)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"report.md", "report.html", "results.json", "model.safetensors", "config.json"} <= {p.name for p in written}
    assert {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in written
            if p.stat().st_mode & 0o777 != 0o640} == {}

    data = json.loads((tmp_path / "results.json").read_text())
    assert {"dataset", "standard", "accelerated", "speedup_train", "speedup_inference", "compute_saved"} <= set(data)
    for block in ("standard", "accelerated"):
        assert {"params", "train_accuracy", "test_accuracy", "train_time_s", "inference_time_s",
                "forward_nfe", "backward_nfe"} <= set(data[block])
    assert data["standard"]["params"] == data["accelerated"]["params"] > 0
    assert data["speedup_train"] == data["standard"]["train_time_s"] / data["accelerated"]["train_time_s"]
    assert set(data["compute_saved"]) == {"by_nfe", "by_time"}
    assert data["epochs_run"] == {"standard": 2, "accelerated": 2}
    assert data["speedup_train_per_epoch"] == pytest.approx(data["speedup_train_common_epochs"])
    for name in ("report.md", "report.html", "results_table.csv", "epochs.csv", "residuals.csv",
                 "accuracy_vs_epoch.png", "residuals.png", "m_tradeoff.png", "speedup.png", "m_tradeoff_trained.csv"):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    md = report.read_text()
    # the sizes the runs used (--max-train 100 / --max-test 50), not the dataset's 1437 / 360
    assert "Dataset: 100 training / 50 test images" in md
    assert "| Epochs trained | 2 | 2 |" in md
    assert "| Number of parameters |" in md and "![Residual vs iteration](residuals.png)" in md
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    epochs = (tmp_path / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 1 + 2 * 2  # header + 2 epochs x 2 solvers


def test_results_table_compares_equal_work_when_early_stopping_ended_runs_at_different_epochs():
    from andersonn.study import results_table
    from andersonn.study.report import table_rows

    block = dict(params=10, train_accuracy=0.9, test_accuracy=0.9, best_test_accuracy=0.9, inference_time_s=1.0,
                 inference_time_per_batch_s=0.1, forward_nfe=10.0, backward_nfe=5.0, inference_nfe=10.0)
    standard = dict(block, train_time_s=40.0)  # 4 epochs of 10 s
    accelerated = dict(block, train_time_s=10.0)  # stopped early after 2 epochs of 5 s
    history = {"standard": [{"epoch_time_s": 10.0}] * 4, "accelerated": [{"epoch_time_s": 5.0}] * 2}
    table = results_table(standard, accelerated, "toy", history)
    assert table["speedup_train"] == 4.0  # the whole runs: credits the one that stopped sooner
    assert table["speedup_train_per_epoch"] == table["speedup_train_common_epochs"] == 2.0
    assert table["epochs_run"] == {"standard": 4, "accelerated": 2}
    rows = {q: (s, a) for q, s, a in table_rows(table)}
    assert rows["Epochs trained"] == ("4", "2") and rows["Speedup, training, per epoch"] == ("1.00", "2.00")
    assert "epochs_run" not in results_table(standard, accelerated, "toy")  # no history, no per-epoch claim


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


def test_compare_resume_refuses_finished_runs_of_another_dataset(tmp_path, monkeypatch):
    from andersonn.data import ImageDataset, registry
    from andersonn.train import ConfigError

    def other(data_dir=None, image_size: int = 8):  # same shapes and classes as digits: only the name differs
        g = torch.Generator().manual_seed(0)
        x = torch.randn(120, 1, image_size, image_size, generator=g)
        y = torch.arange(120) % 10
        return ImageDataset("test-other", x[:100], y[:100], x[100:], y[100:], [str(i) for i in range(10)])

    monkeypatch.setitem(registry._REGISTRY, "test-other", (other, "random images, digits' shapes"))
    first = compare(TrainConfig(**(TINY | {"epochs": 1})), tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"finished run with other settings: --dataset digits \(saved\) vs "
                                          r"test-other \(asked\)"):
        compare(TrainConfig(**(TINY | {"epochs": 1, "dataset": "test-other"})), tmp_path, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"--image-size 8 \(saved\) vs 12 \(asked\)"):
        compare(TrainConfig(**(TINY | {"epochs": 1, "dataset_options": {"image_size": 12}})), tmp_path, resume=True,
                progress=False)
    # nothing was overwritten by the refused resumes
    assert json.loads((tmp_path / "results.json").read_text())["dataset"] == "digits"
    saved = json.loads((tmp_path / "standard" / "summary.json").read_text())
    assert {k: saved[k] for k in first["standard"]} == first["standard"]


@pytest.mark.slow
def test_demo_resumes_reuses_and_extends_with_the_epochs_it_reports(tmp_path):
    from andersonn.study.demo import run_demo
    from andersonn.train import ConfigError

    out = tmp_path / "demo"
    run_demo(out, dataset="digits", epochs=1, max_train=100, max_test=50, progress=False)
    one = json.loads((out / "results.json").read_text())
    assert one["config"]["epochs"] == 1 and one["dataset_summary"]["train"] == 100
    model_bytes = (out / "accelerated" / "model.safetensors").read_bytes()
    # the same demo again (resume is the default): reused, nothing retrained
    run_demo(out, dataset="digits", epochs=1, max_train=100, max_test=50, progress=False)
    assert (out / "accelerated" / "model.safetensors").read_bytes() == model_bytes
    assert json.loads((out / "results.json").read_text())["accelerated"] == one["accelerated"]
    # two epochs after one: both runs are extended and the report's numbers are the 2-epoch ones
    run_demo(out, dataset="digits", epochs=2, max_train=100, max_test=50, progress=False)
    two = json.loads((out / "results.json").read_text())
    assert two["config"]["epochs"] == 2
    for label in ("standard", "accelerated"):
        metrics = json.loads((out / label / "metrics.json").read_text())
        assert [r["epoch"] for r in metrics] == [1, 2]
        assert json.loads((out / label / "summary.json").read_text())["extended_from_epochs"] == 1
    assert (out / "accelerated" / "model.safetensors").read_bytes() != model_bytes
    assert "Dataset: 100 training / 50 test images" in (out / "report.md").read_text()
    # other settings on the same folder are refused, naming them
    with pytest.raises(ConfigError, match=r"--max-train 100 \(saved\) vs 80 \(asked\)"):
        run_demo(out, dataset="digits", epochs=2, max_train=80, max_test=50, progress=False)


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
