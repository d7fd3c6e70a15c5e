"""Solver settings live in one mapping, checked by the solver's own options class, from the CLI to a saved model."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from andersonn.cli import app
from andersonn.solvers import FixedPointMethod, SolverInputError, SolverOptions, register_solver
from andersonn.train import ConfigError, TrainConfig, load_trained
from andersonn.train.config import setting_differences

TINY_FLAGS = ["--dataset", "digits", "--image-size", "8", "--max-train", "100", "--max-test", "40",
              "--channels", "8", "--inner-channels", "8", "--batch-size", "50", "--epochs", "1", "--max-iter", "6",
              "--backward-max-iter", "6", "--tol", "1e-2", "--backward-tol", "1e-2", "--bn-recalibrate", "0"]
WEIGHTS_SEEN: list[float] = []


@dataclasses.dataclass(frozen=True)
class RelaxedOptions(SolverOptions):
    weight: float = 0.5
    verbose: bool = False

    def validate(self) -> None:
        if not 0 < self.weight <= 1:
            raise SolverInputError(f"weight must be in (0, 1], got {self.weight!r}")


@register_solver("test-relaxed", replace=True)
class Relaxed(FixedPointMethod):
    """z + w (f(z) - z): a solver the CLI has never heard of."""

    Options = RelaxedOptions
    can_restart = False

    def step(self, z, fz, g, k, reject):
        WEIGHTS_SEEN.append(self.options.weight)
        return z + self.options.weight * g, None


def _train(tmp_path, *extra):
    return CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), *TINY_FLAGS, *extra])


def test_a_solver_registered_here_trains_from_the_cli_with_its_options(tmp_path):
    WEIGHTS_SEEN.clear()
    r = _train(tmp_path, "--solver", "test-relaxed", "--solver-option", "weight=0.75")
    assert r.exit_code == 0, r.output
    assert WEIGHTS_SEEN and set(WEIGHTS_SEEN) == {0.75}  # forward and adjoint solves both got the option
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert cfg["solver"] == "test-relaxed" and cfg["solver_options"] == {"weight": 0.75}
    WEIGHTS_SEEN.clear()
    model, _ = load_trained(tmp_path / "run")
    assert model.deq.solver == "test-relaxed" and model.deq.solver_options == {"weight": 0.75}


@pytest.mark.parametrize("flags, message", [
    (["--solver", "test-relaxed", "--solver-option", "wieght=0.5"], "unknown option 'wieght' for solver 'test-relaxed'. Did you mean 'weight'?"),
    (["--solver", "test-relaxed", "--solver-option", "weight=abc"], "option weight='abc': not a valid float"),
    (["--solver", "test-relaxed", "--solver-option", "weight=2"], "weight must be in (0, 1], got 2.0"),
    (["--solver", "test-relaxed", "--solver-option", "verbose=maybe"], "option verbose='maybe': not a valid bool"),
    (["--solver", "test-relaxed", "--solver-option", "weight"], "expected KEY=VALUE"),
    (["--solver", "test-relaxed", "--m", "3"], "--m: Anderson options, with no effect with --solver test-relaxed"),
    (["--m", "3", "--solver-option", "m=4"], "--m and --solver-option m=... both set m"),
    (["--solver-option", "m=0"], "m must be an integer >= 1"),
    (["--solver", "broyden", "--solver-option", "memory=-1"], "memory"),
])
def test_bad_solver_options_are_one_line_naming_them(tmp_path, flags, message):
    r = _train(tmp_path, *flags)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "run" / "config.json").exists()


def test_config_carries_the_options_and_the_defaults_stay_in_the_options_class():
    cfg = TrainConfig(solver="broyden", solver_options={"memory": 10})
    cfg.validate()
    assert cfg.deq_options()["memory"] == 10 and "m" not in cfg.deq_options()
    assert "m" not in TrainConfig().deq_options()  # Anderson's m=5 comes from AndersonOptions, not from here
    with pytest.raises(ConfigError, match="unknown option 'm' for solver 'forward'"):
        TrainConfig(solver="forward", solver_options={"m": 3}).validate()
    with pytest.raises(ConfigError, match="--solver-option: solver options have no effect with --arch explicit"):
        TrainConfig(arch="explicit", solver_options={"m": 3}, tol=TrainConfig.tol).validate()
    assert setting_differences(TrainConfig(solver_options={"m": 3}).to_dict(),
                               TrainConfig(solver_options={"m": 4}).to_dict()) == [
        "--solver-option m: 3 (saved) vs 4 (asked)"]


def test_load_trained_with_another_solver_drops_the_saved_options(tmp_path):
    r = _train(tmp_path, "--m", "3", "--lam", "1e-3")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["solver_options"] == {"m": 3, "lam": 1e-3}
    model, _ = load_trained(tmp_path / "run")
    assert model.deq.solver_options == {"m": 3, "lam": 1e-3}
    model, _ = load_trained(tmp_path / "run", solver="forward")
    assert model.deq.solver_options == {} and model.deq.backward_solver == "forward"
    model, _ = load_trained(tmp_path / "run", m=2)
    assert model.deq.solver_options == {"m": 2, "lam": 1e-3}
