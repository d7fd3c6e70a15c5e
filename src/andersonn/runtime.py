"""Process-level settings that make CPU solves faster.

PyTorch's CPU allocator asks the C library for every tensor. With glibc's defaults, a
tensor of more than a few MB is its own ``mmap``: freed with ``munmap`` when it dies and
page-faulted in afresh, page by page, when the next one is made. A fixed-point solve makes
and drops state-sized tensors every iteration (f's activations, f(z), the next iterate), so
on the poster's layer a good part of each iteration went to the kernel zeroing and mapping
pages. :func:`tune_cpu_allocator` tells glibc to serve allocations up to 32 MiB from its
heap and to keep freed heap memory for reuse: solves and training epochs run faster, at the
price of a process that keeps its peak heap instead of handing it back to the OS. What it
gains and costs is measured by ``benchmarks/malloc_probe.py``; the figures are in
``benchmarks/results/README.md`` ("The CPU allocator setting"), not here, so there is one
place to update when they change.

The ``andersonn`` command calls it at start-up (``ANDERSONN_TUNE_MALLOC=0`` turns that
off); library users call it themselves. It does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

__all__ = ["tune_cpu_allocator", "malloc_stats", "trim_heap", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2**30  # keep up to 1 GiB of freed heap before returning memory to the OS

_tuned: bool | None = None


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.lru_cache(maxsize=None)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        if hasattr(libc, "mallinfo2"):  # glibc >= 2.33
            libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


def malloc_stats() -> dict[str, int] | None:
    """Bytes the C allocator hands out now: ``heap`` (chunks in use from its heap) and ``mmapped``
    (chunks that are their own mapping: large tensors with glibc's defaults); None without
    glibc >= 2.33. The benchmarks read it for memory that is live, not merely resident.

    Example:
        >>> import andersonn.runtime as rt
        >>> s = rt.malloc_stats()
        >>> s is None or (s["heap"] >= 0 and s["mmapped"] >= 0)
        True
    """
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    m = libc.mallinfo2()
    return {"heap": m.uordblks, "mmapped": m.hblkhd}


def trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``); does nothing elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def tune_cpu_allocator() -> bool:
    """Serve allocations up to 32 MiB from glibc's heap and keep freed memory for reuse.

    Safe to call more than once (the first call decides); returns whether the setting is
    in effect. ``ANDERSONN_TUNE_MALLOC=0`` turns it off.

    Example (at the top of a script, before the heavy work):
        >>> import andersonn
        >>> tuned = andersonn.tune_cpu_allocator()  # doctest: +SKIP
        >>> andersonn.runtime.MMAP_THRESHOLD // 2**20  # MiB served from the heap when tuned
        32
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    if os.environ.get("ANDERSONN_TUNE_MALLOC", "1").strip().lower() in ("0", "false", "no", "off"):
        _tuned = False
        return False
    libc = _glibc()
    if libc is None:
        _tuned = False
        return False
    # mallopt returns 1 on success. Setting either value also stops glibc's dynamic threshold.
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _tuned = ok
    return ok
