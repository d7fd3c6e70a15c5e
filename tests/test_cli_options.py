"""Every CLI command x every option with out-of-range values: one line on stderr, no traceback, exit != 0.

The walker introspects the click command tree, so a new option is covered automatically; an option of a
kind it cannot exercise fails the test (add a rule or a reasoned entry to a table below).
Heavy entry points are replaced by a tripwire, so a bad value that slips past validation fails the case
instead of starting training, xTB labelling or a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from andersonn.cli import app

CMD = typer.main.get_command(app)

# (command, option) -> why 0 / negative values are legitimate.
ZERO_OK = {
    ("train", "lam"): "Anderson regularisation lambda 0 is plain least squares",
    ("compare", "lam"): "Anderson regularisation lambda 0 is plain least squares",
    ("train", "bn_recalibrate"): "0 keeps the BatchNorm momentum averages",
    ("compare", "bn_recalibrate"): "0 keeps the BatchNorm momentum averages",
    ("train", "checkpoint_every"): "0 checkpoints once per epoch",
    ("train", "patience"): "0 trains every epoch",
    ("train", "label_smoothing"): "0 is no smoothing",
    ("train", "jacobian_reg"): "0 is no Jacobian penalty",
    ("train", "correction_states"): "0 is no fixed-point correction",
    ("train", "correction_weight"): "weight 0 keeps the states' forward cost but drops their loss",
}
ZERO_OK.update({
    ("train", "lr_min"): "the cosine schedule may anneal to 0",
    ("compare", "lr_min"): "the cosine schedule may anneal to 0",
})
NEGATIVE_OK = {
    ("train", "seed"): "any integer seeds the generator",
    ("compare", "seed"): "any integer seeds the generator",
    ("residuals", "seed"): "any integer seeds the generator",
}
ZERO_OK.update(NEGATIVE_OK)
# (command, option) -> why an unknown name cannot be rejected without heavy work (not exercised).
FREE_STRINGS = {
    ("label", "scheduler"): "known bad only on connecting: test_parallel.py::test_a_bad_scheduler_address_...",
    ("screen", "scheduler"): "known bad only on connecting (the same parallel._client as label's)",
}
# Path options for which an (empty) directory is a valid value.
DIR_OK = {"data_dir": "an empty folder is valid for datasets that need none (digits)"}
# Path options that are outputs (a missing path is valid: it is created).
OUTPUTS = {"out", "cache"}

HEAVY = [("andersonn.train", "train"), ("andersonn.study", "compare"), ("andersonn.study.demo", "run_demo"),
         ("andersonn.study", "residual_study"), ("andersonn.study", "m_tradeoff"),
         ("andersonn.screening", "screen"), ("andersonn.chem.labels", "label_file")]


class HeavyWorkReached(AssertionError):
    pass


@pytest.fixture(autouse=True)
def tripwire(monkeypatch):
    import importlib

    def trip(*a, **k):
        raise HeavyWorkReached("a bad value reached heavy work (validation missing or too late)")

    for mod, name in HEAVY:
        try:
            module = importlib.import_module(mod)
        except ImportError:
            continue
        monkeypatch.setattr(module, name, trip)


def _annotation(param):
    """The parameter's Python type, ``Optional[X]`` and ``list[X]`` unwrapped (recent typer keeps it in
    ``type_descriptor``; older typer/click expose a click ``ParamType`` as ``param.type``)."""
    import pathlib
    import typing

    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return {"integer": int, "float": float, "path": pathlib.Path, "text": str, "boolean": bool}.get(
            getattr(param.type, "name", ""), type(param.type))
    ann = desc.annotation
    while typing.get_origin(ann) is not None:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        ann = args[0]
    return ann


def _kind(param) -> str:
    import pathlib

    if getattr(param, "is_flag", False):
        return "bool"
    ann = _annotation(param)
    for typ, kind in ((bool, "bool"), (int, "int"), (float, "float"), (pathlib.Path, "path"), (str, "str")):
        if isinstance(ann, type) and issubclass(ann, typ):
            return kind
    raise AssertionError(f"{param.name}: option type {ann!r} unknown to the walker")


def _bad_values(cmd: str, param, tmp) -> list[str]:
    kind = _kind(param)
    key = (cmd, param.name)
    if kind == "bool":
        return []  # a flag has no bad value
    if kind in ("int", "float"):
        bad = ["abc"]
        if key not in ZERO_OK:
            bad.append("0")
        if key not in NEGATIVE_OK:
            bad.append("-1")
        return bad
    if kind == "path":
        if param.name in OUTPUTS:
            return [str(tmp / "afile.txt" / "sub")]  # inside a regular file: nothing can be written there
        bad = [str(tmp / "missing"), str(tmp / "empty.bin"), str(tmp / "binary.bin")]
        return bad if param.name in DIR_OK else bad + [str(tmp / "adir")]
    if key in FREE_STRINGS:
        return []
    if param.name == "ms":
        return ["abc", "0", "-1"]
    if param.name == "dataset_option":
        return ["garbage-without-equals"]
    return ["no-such-name"]


def _cases():
    out = []
    for cname, cmd in CMD.commands.items():
        for p in cmd.params:
            if p.name == "help":
                continue
            _kind(p)  # unknown kinds fail collection loudly
            out.append((cname, p.name))
    return out


def _invoke(args):
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 / vendored click: stderr is separate already
        runner = CliRunner()
    return runner.invoke(app, args)


def _required_args(cmd, skip, tmp, valid: bool = False) -> list[str]:
    """Values for required parameters other than the one under test: a missing file (fails early), or
    with ``valid`` a readable molecule file, so that a bad value of another option has to be refused
    on its own, before any heavy work."""
    args = []
    for p in cmd.params:
        if p.name == skip or not p.required:
            continue
        value = str(tmp / VALID_INPUT_COMMANDS[cmd.name]) if valid else str(tmp / "missing-input")
        if p.param_type_name == "argument":
            args.append(value)
        else:
            args += [p.opts[0], value]
    return args


# Commands with a required input, walked a second time with a valid one (made in the test's folder).
VALID_INPUT_COMMANDS = {"label": "molecules.csv", "screen": "molecules.csv", "m-tradeoff": "model"}


def _tiny_digits_model(folder):
    """A saved (untrained) digits model: what m-tradeoff needs to get past its --model."""
    from types import SimpleNamespace

    from andersonn.models import deq_classifier
    from andersonn.train import TrainConfig
    from andersonn.train.saved_model import save_model

    net = deq_classifier(1, 8, 10, channels=8, inner_channels=8, groups=2, pool=8)
    save_model(net, TrainConfig(dataset="digits", channels=8, inner_channels=8),
               SimpleNamespace(class_names=[str(d) for d in range(10)], meta={}), folder)


def _walk_cases():
    out = [(c, o, False) for c, o in _cases()]
    cmds = CMD.commands
    out += [(c, o, True) for c, o in _cases() if c in VALID_INPUT_COMMANDS
            and not next(p for p in cmds[c].params if p.name == o).required]
    return out


@pytest.mark.parametrize("command,option,valid_inputs", _walk_cases())
def test_bad_option_value_is_one_line(command, option, valid_inputs, tmp_path):
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile.txt").write_text("a regular file\n")
    (tmp_path / "molecules.csv").write_text("name,smiles\nwater,O\nethanol,CCO\n")
    if valid_inputs and command == "m-tradeoff":
        _tiny_digits_model(tmp_path / "model")
    cmd = CMD.commands[command]
    param = next(p for p in cmd.params if p.name == option)
    for value in _bad_values(command, param, tmp_path):
        required = _required_args(cmd, option, tmp_path, valid=valid_inputs)
        if param.param_type_name == "argument":
            args = [command, value] + required
        else:
            args = [command, param.opts[0], value] + required
        r = _invoke(args)
        assert not isinstance(r.exception, HeavyWorkReached), f"{args}: bad value accepted, heavy work started"
        err = r.stderr if r.stderr else r.output
        assert r.exit_code != 0, f"{args}: exit 0 on a bad value\n{r.output}"
        assert isinstance(r.exception, SystemExit), f"{args}: {type(r.exception).__name__}: {r.exception}"
        assert "Traceback" not in err, f"{args}: traceback\n{err}"
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, f"{args}: expected one error line, got\n{err}"
        assert lines[0].startswith("error:"), f"{args}: {lines[0]}"
        if param.name in OUTPUTS:  # the output is refused first, by name, before any input is read
            assert "afile.txt" in lines[0] and param.opts[0] in lines[0], f"{args}: {lines[0]}"
        elif "missing-input" in lines[0]:
            pass  # a required input (a missing file, see _required_args) was refused first, by name
        elif param.param_type_name == "argument" or _kind(param) == "path":  # the line names the file
            assert Path(value).name in lines[0], f"{args}: the error does not name {value}: {lines[0]}"
        else:  # the line names the option (or, for a value of another option's making, the value itself)
            named = (param.opts[0] in lines[0] or f"'{value}'" in lines[0] or f"{value!r}" in lines[0]
                     or param.name in lines[0])
            assert named, f"{args}: the error names neither {param.opts[0]} nor {value!r}: {lines[0]}"


def test_every_command_is_walked():
    assert {c for c, _ in _cases()} >= {"train", "compare", "residuals", "m-tradeoff", "demo", "label", "screen"}


def test_usage_error_is_one_line_exit_2():
    r = _invoke(["train", "--no-such-option"])
    assert r.exit_code == 2
    err = r.stderr if r.stderr else r.output
    assert len(err.strip().splitlines()) == 1 and "--no-such-option" in err


@pytest.mark.parametrize("command", ["train", "compare"])
def test_device_cuda_without_a_gpu_is_one_line_before_any_work(command, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the message on a machine without CUDA")
    r = _invoke([command, "--device", "cuda", "--out", str(tmp_path / "run")])
    assert not isinstance(r.exception, HeavyWorkReached), "--device cuda reached training on a machine without CUDA"
    err = r.stderr if r.stderr else r.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, err
    assert lines[0] == "error: --device cuda: this machine has no CUDA device that PyTorch can use"
