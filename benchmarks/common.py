"""Shared pieces of the benchmarks: problems, timing, result files."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from andersonn.models import ImplicitConvBlock

RESULTS = Path(__file__).resolve().parent / "results"


def poster_layer_problem(batch: int = 100, channels: int = 48, inner: int = 64, size: int = 32,
                         init_std: float = 0.01, seed: int = 0):
    """The poster's implicit layer at the implicit-layers tutorial's size, with a random input."""
    torch.manual_seed(seed)
    f = ImplicitConvBlock(channels, inner, init_std=init_std).eval()
    for p in f.parameters():
        p.requires_grad_(False)
    x = torch.randn(batch, channels, size, size)
    return f, x


class TimedMap:
    """Wraps f(z, *args) and accumulates the wall time spent inside it."""

    def __init__(self, f: Callable[..., torch.Tensor]):
        self.f, self.seconds, self.calls, self.rows = f, 0.0, 0, 0

    def __call__(self, z, *args):
        t = time.perf_counter()
        out = self.f(z, *args)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        self.rows += z.shape[0]
        return out


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


def environment() -> dict:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
