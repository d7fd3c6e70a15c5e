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
