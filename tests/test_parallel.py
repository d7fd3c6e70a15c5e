"""ResultCache and map_cached: persistence, error records, resume, a real (tiny) Dask cluster."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from andersonn.parallel import ResultCache, map_cached


def _square(x: int) -> dict:
    if x < 0:
        raise ValueError(f"negative input {x}")
    return {"sq": x * x}


def test_cache_roundtrip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    c = ResultCache(path)
    c.put("a", {"v": [1, 2.5, None]})
    c.put("b", {"error": "boom"})
    c.put("a", {"v": 3})  # replace, not duplicate
    assert "a" in c and "zz" not in c and len(c) == 2
    c.close()
    c2 = ResultCache(path)
    assert c2.get("a") == {"v": 3}
    assert dict(c2.items()) == {"a": {"v": 3}, "b": {"error": "boom"}}
    assert c2.get("missing", 7) == 7
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode.lower() == "wal"


def test_map_cached_synchronous_records_errors_and_resumes(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c.sqlite")
    calls: list[int] = []

    def fn(x: int) -> dict:
        calls.append(x)
        return _square(x)

    out = map_cached(fn, {"p": 3, "n": -1}, cache, scheduler="synchronous")
    assert out["p"] == {"sq": 9}
    assert out["n"]["error"] == "ValueError: negative input -1"
    out2 = map_cached(fn, {"p": 3, "n": -1, "q": 4}, cache, scheduler="synchronous")
    assert calls == [3, -1, 4]  # nothing cached is recomputed, errors included
    assert out2["q"] == {"sq": 16} and len(cache) == 3


def test_map_cached_local_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    cache = ResultCache(tmp_path / "c.sqlite")
    items = {f"k{i}": i for i in range(6)} | {"bad": -2}
    out = map_cached(_square, items, cache, n_workers=1, desc="test")
    assert [out[f"k{i}"]["sq"] for i in range(6)] == [i * i for i in range(6)]
    assert "negative input" in out["bad"]["error"]
    assert len(cache) == 7


def test_progress_false_shows_no_bar(tmp_path, capsys):
    from andersonn.parallel import ResultCache, map_cached, map_chunks

    assert map_chunks(lambda xs: [x + 1 for x in xs], [1, 2, 3], chunk_size=2, scheduler="synchronous",
                      progress=False) == [2, 3, 4]
    with ResultCache(tmp_path / "c.sqlite") as cache:
        assert map_cached(lambda x: x * 2, {"a": 1}, cache, scheduler="synchronous", progress=False) == {"a": 2}
    assert capsys.readouterr().err == ""
    map_chunks(lambda xs: xs, [1], scheduler="synchronous")
    assert "map_cached" in capsys.readouterr().err  # the default still shows it
