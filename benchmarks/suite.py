"""The solver benchmark suite: problems, peer solvers, and one comparison per process.

``python benchmarks/suite.py PROBLEM [--device cuda]`` runs every solver on one
problem in this process (same f, inputs, tolerance, thread count; repetitions
interleaved, medians reported) and writes ``benchmarks/results/PROBLEM.json``
(``PROBLEM_cuda.json`` on a GPU: times from CUDA events after a warm-up
repetition, peak memory from the CUDA allocator; SciPy is CPU-only and left out).
``--competing-load 2`` measures the same with a second, 2-thread PyTorch process
running beside every solve (``PROBLEM_loaded.json``: a busy machine, the load started
and stopped by the benchmark). ``benchmarks/run_all.py`` runs every problem in its own
process and writes the Markdown table.  Problems: ``poster_random``, ``poster_trained``, ``linear``, ``mixed``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from typing import Callable

import torch

import andersonn
from andersonn.runtime import malloc_stats, trim_heap
from common import Stopwatch, TimedMap, environment, poster_layer_problem, save
from reference import tutorial_anderson

M = 5  # history window of every Anderson-type solver
SETTLE_S = 0.5  # idle time before each run (see measure())


class RssPeak:
    """Peak resident set size above the level at entry, sampled every ~1 ms by a thread."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()

    def __enter__(self):
        trim_heap()  # hand freed heap memory back to the OS so the baseline is not inflated by earlier runs
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.delta_mb = (self.peak - self.base) / 2**20


def _live_bytes() -> int:
    """Bytes currently malloc'd by the process: heap chunks in use + mmapped chunks (large tensors)."""
    s = malloc_stats()
    return s["heap"] + s["mmapped"]


LIVE_BYTES = _live_bytes if malloc_stats() is not None else None


class LiveSampledMap(TimedMap):
    """A TimedMap that records the peak of malloc'd bytes just before and just after each call of f.

    What stays allocated across calls (the solver's history, iterates, outputs) is in every
    sample; f's own temporaries are freed by then and are not. Deterministic, unlike RSS.
    """

    def __init__(self, f):
        super().__init__(f)
        self.base = self.peak = LIVE_BYTES()

    def __call__(self, z, *args):
        self.peak = max(self.peak, LIVE_BYTES())
        out = super().__call__(z, *args)
        self.peak = max(self.peak, LIVE_BYTES())
        return out

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.base) / 2**20


# ----------------------------------------------------------------------------- problems


class Problem:
    """f(z, *args) with batch-first args, a start point, tolerance and iteration cap."""

    def __init__(self, name, f, args, z0, tol, max_iter, note):
        self.name, self.f, self.args, self.z0 = name, f, args, z0
        self.tol, self.max_iter, self.note = tol, max_iter, note

    def residual(self, z):
        """Per-sample relative residual ||f(z) - z|| / ||f(z)||, evaluated outside any timing."""
        fz = self.f(z, *self.args)
        return ((fz - z).flatten(1).norm(dim=1) / (fz.flatten(1).norm(dim=1) + 1e-12))


def poster_problem(trained: bool, batch: int = 100, device: str = "cpu") -> Problem:
    # "Trained-like": the poster's layer with conv init std 0.02 instead of 0.01.  Training
    # grows the conv weights and makes the map less contractive; at std 0.02 forward iteration
    # needs ~2x the steps of std 0.01 (and at 0.03 neither solver converges in 300 steps).
    std = 0.02 if trained else 0.01
    f, x = poster_layer_problem(batch=batch, init_std=std, device=device)
    note = (f"poster's ImplicitConvBlock, batch {batch}, 48/64 channels, 32x32, conv init std {std}"
            + (" (trained-like: less contractive)" if trained else " (random init, as the tutorial)"))
    return Problem("poster_trained" if trained else "poster_random", f, (x,), torch.zeros_like(x), 1e-4, 100, note)


def _sym(n: int, lo: float, hi: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (q @ torch.diag(torch.linspace(lo, hi, n, dtype=torch.float64)) @ q.T).float()


def linear_problem(batch: int = 100, n: int = 1024, rho: float = 0.95, device: str = "cpu") -> Problem:
    A = _sym(n, -rho, rho, seed=1).to(device)
    b = torch.randn(batch, n, generator=torch.Generator().manual_seed(2)).to(device)

    def f(z, b):
        return torch.addmm(b, z, A)  # A symmetric: z A^T = z A

    return Problem("linear", f, (b,), torch.zeros(batch, n, device=device), 1e-4, 500,
                   f"z = A z + b, A symmetric {n}x{n} with eigenvalues evenly in [-{rho}, {rho}], batch {batch}")


def mixed_problem(batch: int = 100, n: int = 1024, device: str = "cpu") -> Problem:
    A = _sym(n, -1.0, 1.0, seed=3).to(device)
    # Contraction factor per sample from 0.3 (easy) to 0.99 (hard), most of them easy.
    s = (0.3 + 0.69 * torch.linspace(0, 1, batch) ** 4)[:, None].to(device)
    # small b: tanh stays near linear
    b = 0.1 * torch.randn(batch, n, generator=torch.Generator().manual_seed(4)).to(device)

    def f(z, s, b):
        return s * torch.tanh(z @ A) + b

    return Problem("mixed", f, (s, b), torch.zeros(batch, n, device=device), 1e-4, 500,
                   f"z = s_i tanh(A z) + b, A symmetric {n}x{n} spectrum [-1, 1], per-sample s_i from 0.3 to 0.99 "
                   f"(quartic spacing: mostly easy), batch {batch}")


PROBLEMS: dict[str, Callable[..., Problem]] = {  # each takes device="cpu"
    "poster_random": lambda device="cpu": poster_problem(False, device=device),
    "poster_trained": lambda device="cpu": poster_problem(True, device=device),
    "linear": linear_problem,
    "mixed": mixed_problem,
}


# ----------------------------------------------------------------------------- solvers
# Each runner returns (z, iterations, f-row evaluations); f is a TimedMap.


def run_andersonn(method, reuse_buffers: bool = False, **opts):
    # With reuse_buffers, one Workspace lives across this process's repetitions, as in a DEQ layer.
    ws = andersonn.Workspace() if reuse_buffers else None

    def run(p: Problem, timed):
        r = andersonn.solve(timed, p.z0, method=method, args=p.args, tol=p.tol, max_iter=p.max_iter,
                            store_trace=False, workspace=ws, **opts)
        return r.z, r.iterations, r.sample_evals

    return run


def run_torchdeq(kind):
    def run(p: Problem, timed):
        if kind == "anderson":
            from torchdeq.solver.anderson import anderson_solver as solver
            kw = {"m": M, "lam": 1e-4}
        else:
            from torchdeq.solver.broyden import broyden_solver as solver
            kw = {}
        z, _, _ = solver(lambda z: timed(z, *p.args), p.z0, max_iter=p.max_iter, tol=p.tol, stop_mode="rel", **kw)
        return z, timed.calls, timed.rows

    return run


def run_reference(p: Problem, timed):
    z, nfe = tutorial_anderson(lambda z: timed(z, *p.args), p.z0, m=M, lam=1e-4, tol=p.tol, max_iter=p.max_iter)
    return z, nfe, timed.rows


def run_scipy(p: Problem, timed):
    """SciPy's anderson on the whole batch flattened into one vector (SciPy has no batch axis)."""
    import numpy as np
    from scipy import optimize

    shape, last = p.z0.shape, {}

    def F(v):
        z = torch.from_numpy(np.asarray(v, dtype=np.float32)).view(shape)
        fz = timed(z, *p.args)
        last["fz"] = fz
        return (fz - z).reshape(-1).double().numpy()

    def worst_rel(r):  # stop on the same per-sample relative residual as everyone else
        g = torch.from_numpy(r).view(shape[0], -1)
        return float((g.norm(dim=1) / (last["fz"].reshape(shape[0], -1).double().norm(dim=1) + 1e-12)).max())

    try:
        v = optimize.anderson(F, p.z0.reshape(-1).double().numpy(), M=M, alpha=1.0, w0=0.0, f_tol=p.tol,
                              tol_norm=worst_rel, maxiter=p.max_iter, line_search=None)
    except optimize.NoConvergence as e:
        v = e.args[0]
    return torch.from_numpy(np.asarray(v, dtype=np.float32)).view(shape), timed.calls, timed.rows


def solvers_for(problem: str, device: str = "cpu") -> dict[str, Callable]:
    s = {
        "andersonn anderson": run_andersonn("anderson", m=M),
        "andersonn anderson, reused buffers": run_andersonn("anderson", reuse_buffers=True, m=M),
        "andersonn forward": run_andersonn("forward"),
        "andersonn broyden": run_andersonn("broyden"),
        "tutorial anderson (reference)": run_reference,
        "torchdeq anderson": run_torchdeq("anderson"),
        "torchdeq broyden": run_torchdeq("broyden"),
    }
    if problem in ("linear", "mixed"):
        s["andersonn anderson lam_mode=absolute"] = run_andersonn("anderson", m=M, lam_mode="absolute")
        if torch.device(device).type == "cpu":  # SciPy works on host arrays only
            s["scipy anderson (whole batch)"] = run_scipy
    return s


# ----------------------------------------------------------------------------- competing load

#: What the competing process does: the small, thread-parallel PyTorch work another user's job would
#: put on the same cores (a 2-thread matmul/activation loop), until it is stopped.
COMPETITOR = """
import os, sys, torch
torch.set_num_threads(int(sys.argv[1]))
parent = int(sys.argv[2])
a = torch.randn(384, 384)
print("ready", flush=True)
while os.getppid() == parent:  # a benchmark killed before it could stop this process leaves no load behind
    for _ in range(100):
        a = torch.tanh(a @ a * 1e-2)
"""


class CompetingLoad:
    """A second PyTorch process on the same cores for the duration of the ``with`` block (none for 0 threads).

    Started and stopped by the benchmark itself, so a loaded measurement needs no manual step; the
    process's CPU time over the block is reported, which shows the load was really there.
    """

    def __init__(self, threads: int):
        self.threads = threads
        self.proc = None
        self.cpu_s = 0.0

    def __enter__(self):
        if self.threads:
            import subprocess

            self.proc = subprocess.Popen([sys.executable, "-c", COMPETITOR, str(self.threads), str(os.getpid())],
                                         stdout=subprocess.PIPE, text=True)
            if self.proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the competing load process did not start")
            self._t0 = time.perf_counter()
            self._cpu0 = self._cpu()  # its start-up (importing torch) is not load on the solves
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.cpu_s = self._cpu() - self._cpu0
            self.wall_s = time.perf_counter() - self._t0
            self.proc.kill()
            self.proc.wait()

    def _cpu(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def describe(self) -> dict:
        if not self.threads:
            return {"threads": 0}
        return {"threads": self.threads, "what": "a second process: torch.tanh(a @ a) on 384x384 float32, in a loop",
                "cpu_s": round(self.cpu_s, 1), "wall_s": round(self.wall_s, 1),
                "mean_busy_threads": round(self.cpu_s / max(self.wall_s, 1e-9), 2)}


# ----------------------------------------------------------------------------- measurement


def measure(name: str, reps: int, device: str = "cpu") -> dict:
    torch.set_grad_enabled(False)
    p = PROBLEMS[name](device=device)
    cuda = torch.device(device).type == "cuda"
    settle = SETTLE_S if not cuda else 0.0  # GPU runs are timed by events after a synchronisation
    batch = p.z0.shape[0]
    # One full-batch f evaluation, standalone (the share of f is taken from inside the solves).
    t_f = []
    for i in range(7):  # 2 warm-ups; the random input is made outside the timing
        z = torch.randn_like(p.z0)
        with Stopwatch(device) as sw:
            p.f(z, *p.args)
        if i >= 2:
            t_f.append(sw.seconds)
    t_f = statistics.median(t_f)
    runners = solvers_for(name, device)
    samples: dict[str, list[dict]] = {k: [] for k in runners}
    rss: dict[str, float] = {}
    live: dict[str, float] = {}
    names = list(runners)
    for rep in range(reps + 2):  # rep 0 is a warm-up, rep 1 measures memory; both untimed
        # Interleaved (every solver sees the same machine load) and rotated every rep: whoever
        # runs right after a solver that freed gigabytes (Broyden) reuses faulted-in heap pages
        # and measured ~25% fast when the order was fixed.
        shift = rep % len(names)
        for label in names[shift:] + names[:shift]:
            run = runners[label]
            # Let the previous solver's thread pools go idle first: OpenBLAS threads (SciPy)
            # keep spinning for a while after a call and slowed whichever solver came next by ~1.7x.
            time.sleep(settle)
            if rep == 1 and cuda:  # the CUDA allocator's peak: history, iterates and f's temporaries
                torch.cuda.synchronize()
                base_bytes = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                run(p, TimedMap(p.f))
                torch.cuda.synchronize()
                live[label] = (torch.cuda.max_memory_allocated() - base_bytes) / 2**20
                rss[label] = math.nan
                continue
            if rep == 1:  # the RSS sampler thread competes for the GIL, so it never runs in a timed rep
                sampled = LiveSampledMap(p.f) if LIVE_BYTES else TimedMap(p.f)
                with RssPeak() as mem:
                    run(p, sampled)
                rss[label] = mem.delta_mb
                live[label] = sampled.delta_mb if LIVE_BYTES else math.nan
                continue
            timed = TimedMap(p.f)
            with Stopwatch(device) as sw:
                z, iters, rows = run(p, timed)
            wall = sw.seconds
            if rep == 0:
                continue
            res = p.residual(z)
            samples[label].append({
                "wall_s": wall, "f_s": timed.seconds, "iterations": iters, "f_rows": rows,
                "f_calls": timed.calls,
                "max_residual": float(res.max()), "converged_fraction": float((res < p.tol).float().mean()),
            })
    rows = {}
    for label, runs in samples.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        it = max(med["iterations"], 1)
        overhead = (med["wall_s"] - med["f_s"]) / it
        med.update({
            "mean_nfe": med["f_rows"] / batch,
            "f_per_iter_s": med["f_s"] / max(med["f_calls"], 1),
            "overhead_per_iter_s": overhead,
            # The unit is f's own full-batch cost measured inside the same solves (f time per
            # row x batch): back-to-back standalone calls ran 1.2-1.6x slower than f inside the
            # solver loops on this machine, which made the overhead look smaller than it is.
            "f_full_batch_in_run_s": med["f_s"] / max(med["f_rows"], 1) * batch,
            "overhead_fraction_of_f": overhead / (med["f_s"] / max(med["f_rows"], 1) * batch),
            "overhead_fraction_of_standalone_f": overhead / t_f,
            "wall_all_s": [r["wall_s"] for r in runs],
            "rss_peak_mb": rss[label],
            "live_peak_mb": live[label],
        })
        rows[label] = med
    base = rows["andersonn anderson"]
    ours = [r["wall_s"] for r in samples["andersonn anderson"]]
    for label, r in rows.items():
        # Ratio within each repetition (its solvers ran back to back, under the same machine
        # load), then the median and range over repetitions: steadier than a ratio of medians.
        per_rep = [x["wall_s"] / o for x, o in zip(samples[label], ours)]
        r["wall_ratio"] = statistics.median(per_rep)
        r["wall_ratio_per_rep"] = per_rep
        r["wall_ratio_of_medians"] = r["wall_s"] / base["wall_s"]
        r["f_rows_ratio"] = r["f_rows"] / base["f_rows"]
    n = p.z0[0].numel()
    state_mb = batch * n * p.z0.element_size() / 2**20
    return {
        "problem": name, "note": p.note, "env": environment(device), "tol": p.tol, "max_iter": p.max_iter, "m": M,
        "batch": batch, "state_mb": state_mb, "f_eval_s": t_f, "reps": reps,
        # F and G ring buffers (2m copies) plus the current and best iterates (2 copies).
        "andersonn_history_mb_analytical": (2 * M + 2) * state_mb,
        "memory_note": "rss_peak_mb: peak RSS above the level before the solve, sampled every ~1 ms by a thread "
                       "in a separate, untimed run (allocator caching can hide reuse, so it is an upper bound "
                       "on fresh memory)",
        "live_note": "live_peak_mb: peak of malloc'd bytes above the level before the solve, sampled just "
                     "before and after every call of f (glibc mallinfo2): what the solver keeps across "
                     "iterations (history, iterates, outputs, compacted args), not f's temporaries",
        "timing_note": (f"each run starts after {SETTLE_S} s idle (thread pools of the previous solver spin down); "
                        "timed runs carry no memory sampler") if not cuda else
                       ("CUDA events around each solve (after a synchronisation) and around each call of f; "
                        "repetition 0 warms up, repetition 1 measures memory; live_peak_mb is the CUDA "
                        "allocator's peak above the level before the solve, f's temporaries included"),
        "results": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("problem", choices=sorted(PROBLEMS))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N for the GPU table")
    ap.add_argument("--tuned-allocator", action="store_true",
                    help="apply andersonn.tune_cpu_allocator() (what the andersonn command does) before anything "
                         "runs, for every solver in the process alike; writes results/PROBLEM_tuned.json")
    ap.add_argument("--competing-load", type=int, default=0, metavar="THREADS",
                    help="run a second PyTorch process with this many threads beside every solve (a busy machine); "
                         "writes results/PROBLEM_loaded.json")
    args = ap.parse_args()
    kind = torch.device(args.device).type
    if args.competing_load < 0:
        ap.error(f"--competing-load must be >= 0 threads, got {args.competing_load}")
    if args.competing_load and (kind != "cpu" or args.tuned_allocator):
        ap.error("--competing-load measures the CPU suite with default settings: not with --device cuda or --tuned-allocator")
    if kind == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: this machine has no CUDA device")
    if args.tuned_allocator:
        if kind != "cpu":
            ap.error("--tuned-allocator is a CPU (glibc) setting; it does not apply with --device cuda")
        if not andersonn.tune_cpu_allocator():
            ap.error("--tuned-allocator: the C library is not glibc (or ANDERSONN_TUNE_MALLOC=0): nothing to tune")
    with CompetingLoad(args.competing_load) as load:
        payload = measure(args.problem, args.reps, args.device)
    payload["competing_load"] = load.describe()
    payload["allocator"] = "tuned (andersonn.tune_cpu_allocator)" if args.tuned_allocator else "glibc defaults"
    suffix = ("_tuned" if args.tuned_allocator else "_loaded" if args.competing_load
              else ("" if kind == "cpu" else f"_{kind}"))
    path = save(args.problem + suffix, payload)
    for k, r in payload["results"].items():
        print(f"{args.problem:15s} {k:38s} wall {r['wall_s']:7.3f}s x{r['wall_ratio']:5.2f} nfe {r['mean_nfe']:6.1f} "
              f"ovh/it {1e3 * r['overhead_per_iter_s']:7.2f}ms ({100 * r['overhead_fraction_of_f']:5.1f}% f) "
              f"res {r['max_residual']:.1e} rss {r['rss_peak_mb']:.0f}MB live {r['live_peak_mb']:.0f}MB", flush=True)
    print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
