"""The CLI's one error boundary: whatever a command lets through of the errors its files can raise (OS, JSON,
SQLite, pickle, safetensors) or of the project's own errors is one line on stderr and exit 2, never a
traceback; and the paths a new user hit that the option walker (test_cli_options.py) does not generate."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from andersonn.cli import _OneLineErrors, app


def _run(application, args):
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2: stderr is separate already
        runner = CliRunner()
    return runner.invoke(application, args)


def _one_error_line(r) -> str:
    err = r.stderr if r.stderr else r.output
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.exit_code, err, r.exception)
    return lines[0]


def _raising(exc: BaseException) -> typer.Typer:
    """An app with the CLI's error handling whose command ``boom`` raises ``exc`` (two commands: typer runs a
    lone command without the group, and the boundary is the group's)."""
    application = typer.Typer(cls=_OneLineErrors)

    @application.command()
    def boom() -> None:
        raise exc

    @application.command()
    def other() -> None:
        pass

    return application


def _safetensor_error():
    from safetensors import SafetensorError

    return SafetensorError("Error while deserializing header: HeaderTooLarge")


@pytest.mark.parametrize("make,expected", [
    (lambda: PermissionError(13, "Permission denied", "/results/preds.csv"), "error: /results/preds.csv: Permission denied"),
    (lambda: IsADirectoryError(21, "Is a directory", "runs/x"), "error: runs/x: Is a directory"),
    (lambda: json.JSONDecodeError("Expecting value", "{oops", 1), "error: JSONDecodeError: Expecting value: line 1 column 2"),
    (lambda: sqlite3.OperationalError("database is locked"), "error: OperationalError: database is locked"),
    (lambda: pickle.UnpicklingError("invalid load key, 'x'."), "error: UnpicklingError: invalid load key, 'x'."),
    (_safetensor_error, "error: SafetensorError: Error while deserializing header: HeaderTooLarge"),
])
def test_file_errors_any_command_lets_through_are_one_line(make, expected):
    line = _one_error_line(_run(_raising(make()), ["boom"]))
    assert line.startswith(expected), line


def test_the_projects_own_errors_keep_their_message():
    from andersonn.train import ConfigError

    assert _one_error_line(_run(_raising(ConfigError("--epochs 0: must be at least 1\nsecond line")), ["boom"])) == \
        "error: --epochs 0: must be at least 1 second line"


def test_a_bug_is_not_dressed_up_as_a_user_error():
    r = _run(_raising(RuntimeError("internal")), ["boom"])
    assert r.exit_code == 1 and isinstance(r.exception, RuntimeError)


def test_screen_refuses_a_missing_cif_beside_a_present_one(tmp_path):
    (tmp_path / "NaCl.cif").write_text("data_NaCl\n_cell_length_a 5.64\n")
    line = _one_error_line(_run(app, ["screen", str(tmp_path / "NaCl.cif"), str(tmp_path / "missing.cif")]))
    assert "missing.cif" in line


def test_train_out_naming_an_existing_file_is_one_line(tmp_path):
    (tmp_path / "run").write_text("not a folder\n")
    line = _one_error_line(_run(app, ["train", "--out", str(tmp_path / "run"), "--epochs", "1"]))
    assert str(tmp_path / "run") in line


def _model_with_bad_config(folder: Path) -> Path:
    from test_cli_options import _tiny_digits_model

    _tiny_digits_model(folder)
    (folder / "config.json").write_text("{not json")
    return folder


def test_residuals_with_a_malformed_model_config_is_one_line(tmp_path):
    model = _model_with_bad_config(tmp_path / "model")
    line = _one_error_line(_run(app, ["residuals", "--model", str(model), "--out", str(tmp_path / "out")]))
    assert str(model / "config.json") in line


def test_screen_with_a_malformed_model_config_is_one_line(tmp_path):
    pytest.importorskip("rdkit")
    model = _model_with_bad_config(tmp_path / "model")
    mols = tmp_path / "m.csv"
    mols.write_text("name,smiles\nethanol,CCO\n")
    line = _one_error_line(_run(app, ["screen", str(mols), "--model", str(model), "--scheduler", "synchronous"]))
    assert str(model / "config.json") in line


def test_compare_resume_over_a_run_folder_with_a_corrupt_file_is_one_line(tmp_path):
    out = tmp_path / "cmp"
    for label in ("standard", "accelerated"):
        (out / label).mkdir(parents=True)
        (out / label / "summary.json").write_text("{}")
        (out / label / "config.json").write_text('{"config": ')  # cut short
    line = _one_error_line(_run(app, ["compare", "--out", str(out), "--resume", "--epochs", "1", "--max-train", "50",
                                      "--max-test", "20"]))
    assert "config.json" in line and "--resume" in line


def test_label_cache_that_cannot_be_opened_is_one_line_naming_it(tmp_path):
    pytest.importorskip("rdkit")
    pytest.importorskip("tblite")
    mols = tmp_path / "m.smi"
    mols.write_text("CO methanol\n")
    (tmp_path / "cache_dir").mkdir()
    line = _one_error_line(_run(app, ["label", str(mols), "--cache", str(tmp_path / "cache_dir"),
                                      "--scheduler", "synchronous"]))
    assert "cache_dir" in line
