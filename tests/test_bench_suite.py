"""The benchmark suite's device plumbing: what a GPU session would run must work on the CPU too."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
# plain imports: a benchmark module that no longer imports is a failure, not a skip
import common  # noqa: E402
import suite  # noqa: E402


def test_stopwatch_and_timed_map_measure_cpu_work():
    calls = []

    def f(z, b):
        calls.append(z.shape[0])
        return 0.5 * z + b

    timed = common.TimedMap(f)
    z, b = torch.zeros(4, 3), torch.ones(4, 3)
    with common.Stopwatch("cpu") as sw:
        for _ in range(3):
            z = timed(z, b)
    assert sw.seconds > 0.0 and timed.seconds > 0.0
    assert timed.seconds <= sw.seconds
    assert (timed.calls, timed.rows) == (3, 12) and calls == [4, 4, 4]


@pytest.mark.parametrize("name", ["linear", "mixed"])
def test_problems_build_on_a_named_device_and_every_peer_solves_them(name):
    p = suite.PROBLEMS[name](device="cpu")
    assert p.z0.device.type == "cpu" and all(a.device.type == "cpu" for a in p.args)
    runners = suite.solvers_for(name, "cpu")
    assert "scipy anderson (whole batch)" in runners
    for label in ("andersonn anderson", "tutorial anderson (reference)"):
        z, iters, rows = runners[label](p, common.TimedMap(p.f))
        assert float(p.residual(z).max()) < 2 * p.tol, label
        assert iters > 1 and rows >= iters


def test_scipy_is_left_out_off_the_cpu():
    # SciPy works on host arrays; on a GPU its row would measure device-to-host copies.
    assert "scipy anderson (whole batch)" not in suite.solvers_for("linear", "cuda")
    assert "andersonn anderson" in suite.solvers_for("linear", "cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_flag_without_a_gpu_says_so():
    r = subprocess.run([sys.executable, "suite.py", "linear", "--device", "cuda"], cwd=BENCH,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "no CUDA device" in r.stderr
    assert "Traceback" not in r.stderr


def test_tuned_allocator_flag_refuses_when_the_setting_is_off():
    # With the setting turned off the run would silently measure glibc's defaults under the tuned name.
    import os

    env = dict(os.environ, ANDERSONN_TUNE_MALLOC="0")
    r = subprocess.run([sys.executable, "suite.py", "linear", "--tuned-allocator"], cwd=BENCH,
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2
    assert "nothing to tune" in r.stderr and "Traceback" not in r.stderr
    assert not (BENCH / "results" / "linear_tuned.json").exists()


def test_andersonn_broyden_is_in_the_suite_and_solves_its_problems():
    for name in ("linear", "mixed"):
        p = suite.PROBLEMS[name](device="cpu")
        z, iters, rows = suite.solvers_for(name, "cpu")["andersonn broyden"](p, common.TimedMap(p.f))
        assert float(p.residual(z).max()) < 2 * p.tol and 1 < iters <= p.max_iter, name


def test_time_to_accuracy_reads_the_first_epoch_at_the_target():
    import time_to_accuracy as tta

    rows = [{"train_time_s": 1.0, "test_accuracy": 0.5}, {"train_time_s": 2.5, "test_accuracy": 0.91},
            {"train_time_s": 4.0, "test_accuracy": 0.89}]
    assert tta.time_to(rows, 0.9) == 2.5 and tta.time_to(rows, 0.95) is None


def test_time_to_accuracy_recipes_start_from_the_same_weights_and_solve_the_same_fixed_point():
    """Every recipe of this project builds and trains a step; with TorchDEQ installed (the bench extra), its
    layer wraps the very block the andersonn model holds and reaches the same fixed point."""
    import time_to_accuracy as tta

    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 0, 1, 0, 1])
    models = {}
    for recipe, (library, _) in tta.RECIPES.items():
        if library == "torchdeq" and not _has("torchdeq"):
            continue
        torch.manual_seed(0)
        models[recipe] = tta.build_model(recipe, (1, 8, 8), 2, 1e-4, 100)
        loss = torch.nn.functional.cross_entropy(models[recipe](x), y)
        loss.backward()
        assert all(p.grad is not None for p in models[recipe].deq.f.parameters()), recipe
    first = {k: v.detach() for k, v in models["accelerated"].state_dict().items()}
    for recipe, m in models.items():
        own = {k.replace("deq.solver.", "deq."): v for k, v in m.state_dict().items()}
        assert all(torch.equal(own[k], first[k]) for k in first if k in own and ".f." in k), recipe
    with torch.no_grad():
        stem = models["accelerated"].eval().stem(x)
        ref = models["accelerated"].deq(stem)
        for recipe, m in models.items():
            err = float((m.eval().deq(stem) - ref).norm() / ref.norm())
            assert err < 1e-2, (recipe, err)  # both solved to a relative residual of 1e-4


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_the_report_states_time_to_accuracy_ratios_per_repetition():
    import report

    def epochs(*times_acc):
        return [{"train_time_s": t, "test_accuracy": a} for t, a in times_acc]

    def entry(lib, reps):
        return {"library": lib, "per_rep": reps, "reached_target": 2, "runs": 2,
                "time_to_target_s": {"median": 0, "min": 0, "max": 0}, "final_test_accuracy": {"median": 0.93}}

    results = {"torchdeq default": entry("torchdeq", [epochs((4, 0.8), (8, 0.91)), epochs((5, 0.8), (10, 0.92))]),
               "standard": entry("andersonn", [epochs((3, 0.9)), epochs((6, 0.9))]),
               "accelerated": entry("andersonn", [epochs((1, 0.85), (2, 0.95)), epochs((1, 0.95))])}
    d = {"target": 0.9, "dataset": "digits", "epochs": 2, "batch_size": 100, "lr": 1e-3, "tol": 1e-3, "max_iter": 30,
         "reps": 2, "best_andersonn_recipe": "accelerated",
         "recipes": {k: {"library": v["library"]} for k, v in results.items()}, "results": results}
    row = next(line for line in report.time_to_accuracy_section(d) if line.startswith("| accelerated |"))
    # vs TorchDEQ default: 8/2 and 10/1 -> median 7, range 4-10; vs standard: 3/2 and 6/1
    assert "| 7.00x (4.00-10.00) | 3.75x (1.50-6.00) |" in row, row


def test_competing_load_runs_a_busy_process_for_the_block_and_stops_it():
    import time

    with suite.CompetingLoad(1) as load:
        deadline = time.monotonic() + 60  # on a loaded machine the load itself may wait for a core
        while load._cpu() - load._cpu0 < 0.2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = load.proc.pid
        assert load.proc.poll() is None
    assert load.proc.poll() is not None  # stopped with the block
    info = load.describe()
    assert info["threads"] == 1 and info["cpu_s"] >= 0.2 and 0.0 < info["mean_busy_threads"] <= 1.5, info
    assert pid > 0 and suite.CompetingLoad(0).__enter__().describe() == {"threads": 0}
    r = subprocess.run([sys.executable, "suite.py", "linear", "--competing-load", "-1"], cwd=BENCH,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--competing-load must be >= 0" in r.stderr and "Traceback" not in r.stderr


def test_the_report_puts_idle_and_loaded_ratios_side_by_side(monkeypatch):
    import report

    def payload(tut, tdq):
        return {"results": {"tutorial anderson (reference)": {"wall_ratio": tut[1], "wall_ratio_per_rep": tut},
                            "torchdeq anderson": {"wall_ratio": tdq[1], "wall_ratio_per_rep": tdq}},
                "competing_load": {"threads": 2, "what": "a loop", "mean_busy_threads": 1.9}}

    files = {"poster_random": payload([1.4, 1.5, 1.6], [1.7, 1.8, 1.9]),
             "poster_random_loaded": payload([1.0, 1.2, 1.4], [1.3, 1.6, 1.7])}
    monkeypatch.setattr(report, "load", files.get)
    lines = report.loaded_section()
    assert "| `poster_random` | tutorial anderson (reference) | 1.50x (1.40-1.60) | 1.20x (1.00-1.40) | 1.3x | no |" in lines
    assert "| `poster_random` | torchdeq anderson | 1.80x (1.70-1.90) | 1.60x (1.30-1.70) | 1.5x | yes |" in lines
    monkeypatch.setattr(report, "load", {}.get)
    assert report.loaded_section() == []
