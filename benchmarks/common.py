"""Shared pieces of the benchmarks: problems, timing, result files."""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from andersonn.models import ImplicitConvBlock

RESULTS = Path(__file__).resolve().parent / "results"


def poster_layer_problem(batch: int = 100, channels: int = 48, inner: int = 64, size: int = 32,
                         init_std: float = 0.01, seed: int = 0, device: str | torch.device = "cpu"):
    """The poster's implicit layer at the implicit-layers tutorial's size, with a random input.

    Weights and input are drawn on the CPU from ``seed`` and then moved, so every device
    solves the same problem.
    """
    torch.manual_seed(seed)
    f = ImplicitConvBlock(channels, inner, init_std=init_std).eval()
    for p in f.parameters():
        p.requires_grad_(False)
    x = torch.randn(batch, channels, size, size)
    return f.to(device), x.to(device)


class TimedMap:
    """Wraps f(z, *args) and accumulates the time spent inside it.

    On the CPU that is wall time. On CUDA a pair of events is recorded around each call (no
    synchronisation inside the solver's loop) and their elapsed GPU time is summed when
    :attr:`seconds` is read.
    """

    def __init__(self, f: Callable[..., torch.Tensor]):
        self.f, self._seconds, self.calls, self.rows = f, 0.0, 0, 0
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def __call__(self, z, *args):
        if z.is_cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = self.f(z, *args)
            end.record()
            self._events.append((start, end))
        else:
            t = time.perf_counter()
            out = self.f(z, *args)
            self._seconds += time.perf_counter() - t
        self.calls += 1
        self.rows += z.shape[0]
        return out

    @property
    def seconds(self) -> float:
        if self._events:
            torch.cuda.synchronize()
            self._seconds += sum(s.elapsed_time(e) for s, e in self._events) / 1e3
            self._events.clear()
        return self._seconds


class Stopwatch:
    """Time of a block of work: wall time on the CPU; on CUDA the GPU time between two events
    recorded after a synchronisation (so queued work of earlier blocks is not counted).

    Example:
        >>> with Stopwatch("cpu") as sw:
        ...     _ = sum(range(1000))
        >>> sw.seconds >= 0.0
        True
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.cuda = torch.device(device).type == "cuda"
        self.seconds = math.nan

    def __enter__(self) -> "Stopwatch":
        if self.cuda:
            torch.cuda.synchronize()
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1e3
        else:
            self.seconds = time.perf_counter() - self._t


def median_time(fn: Callable[[], object], reps: int, warmup: int = 1) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``reps`` runs after ``warmup`` runs, and its last output."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def environment(device: str | torch.device = "cpu") -> dict:
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
        env["cuda"] = torch.version.cuda
    return env


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
