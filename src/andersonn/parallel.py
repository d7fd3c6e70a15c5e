"""Persistent result cache and a resumable, parallel ``map`` over a Dask cluster.

The two pieces are used for every expensive per-item computation in the
package (quantum-chemistry labels of molecules, MOF properties):

* :class:`ResultCache` -- a key -> JSON record store in SQLite (WAL journal,
  one commit per record).  A process killed mid-run loses at most the record
  that was in flight; reopening the file is always safe.
* :func:`map_cached` -- computes ``fn(item)`` for every key that is not yet in
  the cache, on a Dask ``distributed`` cluster (a local one of single-threaded
  worker processes by default), storing each result the moment it completes.
  Running it again after an interruption only computes what is missing.

Example
-------
>>> import tempfile, os
>>> from andersonn.parallel import ResultCache, map_cached
>>> d = tempfile.mkdtemp()
>>> cache = ResultCache(os.path.join(d, "c.sqlite"))
>>> out = map_cached(lambda x: {"sq": x * x}, {"a": 2, "b": 3}, cache,
...                  scheduler="synchronous")
>>> out["b"]["sq"], len(cache)
(9, 2)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from andersonn.extras import require_extra

__all__ = ["ResultCache", "map_cached", "map_chunk_files", "ClusterStartError"]


class ClusterStartError(RuntimeError):
    """No Dask cluster to compute on: a local one could not start, or the scheduler given could not be reached.
    The message names the cause and the fix."""


# How long to wait for a scheduler given by address (Dask's own default is 30 s); a typo should not hang.
_CONNECT_TIMEOUT_S = 10


_SCRIPT_FIX = ('put the calls under `if __name__ == "__main__":` (Dask\'s worker processes import the main script '
               'again, and would start clusters of their own), or pass scheduler="synchronous" to compute in this process')


class ResultCache:
    """Persistent ``str -> JSON-able record`` store backed by SQLite (WAL).

    Each :meth:`put` is its own transaction, so a crash loses at most the record
    being written.  ``put`` on an existing key replaces the record.

    >>> import tempfile, os
    >>> c = ResultCache(os.path.join(tempfile.mkdtemp(), "x.sqlite"))
    >>> c.put("k", {"v": 1}); "k" in c, c.get("k"), len(c)
    (True, {'v': 1}, 1)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=60.0, check_same_thread=False)
        except sqlite3.Error as exc:  # a folder, or a place it cannot create a file
            raise ValueError(f"{self.path}: cannot open a result cache (an SQLite database) there: {exc}") from None
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._conn.commit()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ValueError(f"{self.path}: not a result cache (an SQLite database): {exc}") from None

    def get(self, key: str, default: Any = None) -> Any:
        """Return the record stored under ``key`` (or ``default``)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM records WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, key: str, record: Any) -> None:
        """Store ``record`` (must be JSON-serialisable) under ``key`` and commit."""
        text = json.dumps(record, allow_nan=True)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO records (key, value) VALUES (?, ?)", (key, text)
            )
            self._conn.commit()

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is absent), so the next :func:`map_cached` recomputes it."""
        with self._lock:
            self._conn.execute("DELETE FROM records WHERE key = ?", (key,))
            self._conn.commit()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM records WHERE key = ?", (key,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def items(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(key, record)`` pairs (a snapshot, ordered by key)."""
        with self._lock:
            rows = self._conn.execute("SELECT key, value FROM records ORDER BY key").fetchall()
        for key, value in rows:
            yield key, json.loads(value)

    def keys(self) -> list[str]:
        """All keys, sorted."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT key FROM records ORDER BY key")]

    def close(self) -> None:
        """Close the underlying connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r}, n={len(self)})"


def _error_record(exc: BaseException) -> dict[str, str]:
    reason = f"{type(exc).__name__}: {exc}".strip()
    return {"error": reason}


def _safe_call(fn: Callable[[Any], Any], item: Any) -> Any:
    """Run ``fn(item)``; turn an exception into ``{"error": reason}``."""
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - recorded, not swallowed
        rec = _error_record(exc)
        rec["traceback"] = traceback.format_exc(limit=3)[-2000:]
        return rec


def _progress(total: int, desc: str, show: bool = True):  # noqa: ANN202 - tqdm or a no-op
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc or "map_cached", unit="item", dynamic_ncols=True, disable=not show)
    except ImportError:  # pragma: no cover - tqdm is a core dependency

        class _Null:
            def update(self, n: int = 1) -> None: ...
            def close(self) -> None: ...
            def set_postfix_str(self, s: str) -> None: ...

        return _Null()


def map_cached(
    fn: Callable[[Any], Any],
    items: Mapping[str, Any],
    cache: ResultCache,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    desc: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Compute ``fn(item)`` for every key of ``items`` missing from ``cache``.

    Parameters
    ----------
    fn:
        A picklable function of one item returning a JSON-able record.  An
        exception it raises is recorded as ``{"error": "<Type>: <message>"}``
        (plus a short ``traceback``) and the run carries on.
    items:
        ``key -> item``.  Keys already in ``cache`` are not recomputed.
    cache:
        Where each result is written as soon as it completes.
    scheduler:
        ``None`` (default): start a ``distributed.LocalCluster`` of
        ``n_workers`` processes with one thread each and ``OMP_NUM_THREADS=1``;
        ``"tcp://host:port"``: submit to that existing Dask scheduler;
        ``"synchronous"``: run in this process, one item after another.
        No cluster is started when every key is already cached. A local
        cluster spawns processes that import the main script again: call
        this from a script under ``if __name__ == "__main__":`` (otherwise a
        :class:`ClusterStartError` says so).
    n_workers:
        Worker processes of the local cluster (default ``os.cpu_count()``).
    desc:
        Label of the tqdm progress bar.
    progress:
        Show the progress bar.

    Returns
    -------
    dict
        ``key -> record`` for every key of ``items`` (cached or new).

    Example
    -------
    >>> import tempfile, os
    >>> c = ResultCache(os.path.join(tempfile.mkdtemp(), "c.sqlite"))
    >>> r = map_cached(lambda x: 1 / x, {"ok": 2, "bad": 0}, c, scheduler="synchronous")
    >>> r["ok"], r["bad"]["error"]
    (0.5, 'ZeroDivisionError: division by zero')
    """
    todo = {k: v for k, v in items.items() if k not in cache}
    if todo and scheduler != "synchronous":
        _run_dask(fn, todo, cache, scheduler, n_workers, desc, progress)
    elif todo:
        bar = _progress(len(todo), desc, progress)
        try:
            for key, item in todo.items():
                cache.put(key, _safe_call(fn, item))
                bar.update(1)
        finally:
            bar.close()
    return {k: cache.get(k) for k in items}


def _client(scheduler: str | None, n_workers: int | None):  # noqa: ANN202 - (Client, LocalCluster | None)
    """A Dask client: on a new local cluster of single-threaded processes (``scheduler=None``), or on the
    scheduler at that address. The caller closes both."""
    require_extra("dask", "computing on a Dask cluster (scheduler='synchronous' computes in this process)")
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout=_CONNECT_TIMEOUT_S), None
        except (OSError, ValueError, TypeError) as exc:  # unreachable, refused, or not an address at all
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ClusterStartError(f"could not connect to the Dask scheduler at {scheduler!r} "
                                    f"({type(exc).__name__}: {first})") from exc
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A spawned worker re-running an unguarded script while it starts (what multiprocessing's own
        # bootstrapping check looks at): say so here, printed by the worker, besides the parent's error below.
        script = getattr(sys.modules.get("__mp_main__"), "__file__", None) or "the main script"
        raise ClusterStartError(f"a Dask worker process importing {script} was asked to start a local cluster "
                                f"of its own: {_SCRIPT_FIX}")
    # Workers inherit the environment at spawn: pin BLAS/OpenMP to 1 thread.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=":0",
            env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
    except Exception as exc:  # "Nanny failed to start", a timeout, no free port, ...
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ClusterStartError(f"could not start a local Dask cluster ({type(exc).__name__}: {first}); "
                                f"from a script, {_SCRIPT_FIX}") from exc
    return Client(cluster), cluster


def _run_dask(
    fn: Callable[[Any], Any],
    todo: Mapping[str, Any],
    cache: ResultCache,
    scheduler: str | None,
    n_workers: int | None,
    desc: str,
    progress: bool,
) -> None:
    # The cluster first: it says so when Dask is missing or the scheduler unreachable, before a bar is drawn.
    client, cluster = _client(scheduler, n_workers)
    from dask.distributed import as_completed

    bar = _progress(len(todo), desc, progress)
    try:
        futures = {}
        for key, item in todo.items():
            fut = client.submit(_safe_call, fn, item, key=f"map_cached-{key}", pure=False)
            futures[fut] = key
        for fut in as_completed(futures):
            key = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # worker died, pickling failed, ...
                rec = _error_record(exc)
            cache.put(key, rec)
            bar.update(1)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


def map_chunk_files(
    fn: Callable[[Any], dict[str, Any]],
    items: Mapping[str, Any],
    folder: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    desc: str = "",
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """:func:`map_cached` for work whose results are files (image chunks too large for a JSON record).

    ``fn(item)`` writes one file into ``folder`` (atomically, e.g. with :func:`andersonn.fileio.save_npz`)
    and returns a JSON record whose ``"path"`` is that file's name. The records live in
    ``folder/records.sqlite``. A key whose record holds an error, or whose file is gone, is computed
    again, so a killed build, a chunk that crashed and a file deleted by hand all resume at what is
    missing. ``scheduler``, ``n_workers``, ``desc`` and ``progress`` as in :func:`map_cached`.

    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from andersonn.fileio import save_npz
    >>> d = Path(tempfile.mkdtemp())
    >>> def square(item):
    ...     save_npz(item["path"], x=np.arange(item["n"]) ** 2)
    ...     return {"path": Path(item["path"]).name}
    >>> items = {"c0": {"n": 3, "path": str(d / "c0.npz")}}
    >>> rec = map_chunk_files(square, items, d, scheduler="synchronous", progress=False)
    >>> np.load(d / rec["c0"]["path"])["x"].tolist()
    [0, 1, 4]
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with ResultCache(folder / "records.sqlite") as cache:
        for key in items:
            rec = cache.get(key)
            if rec is not None and (not isinstance(rec, dict) or "error" in rec
                                    or not (folder / str(rec.get("path", ""))).is_file()):
                cache.delete(key)
        return map_cached(fn, items, cache, scheduler=scheduler, n_workers=n_workers, desc=desc, progress=progress)


def map_chunks(
    fn: Callable[[list[Any]], list[Any]],
    items: list[Any],
    *,
    chunk_size: int = 64,
    scheduler: str | None = None,
    n_workers: int | None = None,
    desc: str = "",
    progress: bool = True,
) -> list[Any]:
    """``fn`` over ``items`` in chunks on Dask (uncached), results in input order.

    ``fn`` maps a list of items to a list of results of the same length (an item that fails should
    give a result that says so: an exception in ``fn`` fails the whole call). ``scheduler`` and
    ``n_workers`` as in :func:`map_cached`. For work whose results are large arrays (images) that a
    JSON cache would not hold.

    >>> map_chunks(lambda xs: [x * x for x in xs], [1, 2, 3], chunk_size=2, scheduler="synchronous")
    [1, 4, 9]
    """
    chunks = [items[i: i + chunk_size] for i in range(0, len(items), chunk_size)]
    results: list[list[Any] | None] = [None] * len(chunks)
    bar = _progress(len(items), desc, progress)
    try:
        if scheduler == "synchronous" or len(chunks) <= 1:
            for k, c in enumerate(chunks):
                results[k] = fn(c)
                bar.update(len(c))
        else:
            client, cluster = _client(scheduler, n_workers)  # first: it says so when Dask is not installed
            from dask.distributed import as_completed

            try:
                futures = {client.submit(fn, c, pure=False): k for k, c in enumerate(chunks)}
                for fut in as_completed(futures):
                    k = futures[fut]
                    results[k] = fut.result()
                    bar.update(len(chunks[k]))
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
    finally:
        bar.close()
    return [r for part in results for r in (part or [])]
