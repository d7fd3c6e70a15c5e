"""The image cache: errors recorded, resumes after a kill, builds each structure once."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

pytest.importorskip("pymatgen")

from andersonn.materials import cache as cache_mod  # noqa: E402
from andersonn.materials.cache import IMAGE_VERSION, build_image_cache, cache_key, load_image  # noqa: E402
from andersonn.materials.cif import read_structure  # noqa: E402
from andersonn.materials.examples import example_cif_path  # noqa: E402
from andersonn.materials.image import CHANNELS, structure_image  # noqa: E402

N = 8


def _cifs(tmp_path):
    """N small CIFs under distinct refcodes (alternating rock salt and chain)."""
    src = tmp_path / "src"
    src.mkdir()
    out = {}
    for i in range(N):
        name = "NaCl" if i % 2 == 0 else "chain"
        p = src / f"S{i}.cif"
        shutil.copy(example_cif_path(name), p)
        out[f"S{i}"] = p
    return out


def _n_records(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_errors_recorded_and_others_built(tmp_path):
    cifs = {"good": example_cif_path("NaCl"), "bad": example_cif_path("corrupt"),
            "dis": example_cif_path("disordered")}
    recs = build_image_cache(cifs, tmp_path, 8, scheduler="synchronous")
    assert "error" not in recs["good"] and recs["good"]["n_bonds"] == 24
    assert recs["bad"]["error"].startswith("CifError:") and "corrupt.cif: unreadable CIF" in recs["bad"]["error"]
    assert "disordered" in recs["dis"]["error"]
    img = load_image(tmp_path, recs["good"])
    assert np.array_equal(img, structure_image(read_structure(cifs["good"]), 8))


def test_resume_after_kill_builds_each_structure_once(tmp_path, monkeypatch):
    cifs = _cifs(tmp_path)
    root = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import time
        from andersonn.materials import cache
        real = cache.build_image_record
        def slow(item):
            time.sleep(0.4)
            return real(item)
        cache.build_image_record = slow
        cifs = {{k: v for k, v in {{ {", ".join(f"{k!r}: {str(v)!r}" for k, v in cifs.items())} }}.items()}}
        cache.build_image_cache(cifs, {str(root)!r}, 8, scheduler="synchronous")
        print("FINISHED")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    db = root / "records.sqlite"
    deadline = time.time() + 60
    while _n_records(db) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert b"FINISHED" not in out, "the build finished before it could be killed"
    done = _n_records(db)
    assert 3 <= done < N
    img_dir = root / "images" / f"s8v{IMAGE_VERSION}"
    before = {p.name: p.stat().st_mtime_ns for p in img_dir.glob("*.npy")}

    calls = []
    real = cache_mod.build_image_record

    def counting(item):
        calls.append(item["npy"])
        return real(item)

    monkeypatch.setattr(cache_mod, "build_image_record", counting)
    recs = build_image_cache(cifs, root, 8, scheduler="synchronous")
    assert len(calls) == N - done  # only the missing ones
    assert len(set(calls)) == len(calls)
    assert all("error" not in r for r in recs.values()) and _n_records(db) == N
    after = {p.name: p.stat().st_mtime_ns for p in img_dir.glob("*.npy")}
    finished_before = {f"{r}.npy" for r in cifs if f"images/s8v{IMAGE_VERSION}/{r}.npy" not in calls}
    assert len(finished_before) == done
    assert all(after[n] == before[n] for n in finished_before)  # not rebuilt
    for ref, path in cifs.items():
        assert np.array_equal(load_image(root, recs[ref]), structure_image(read_structure(path), 8))
    # third run: nothing to do
    calls.clear()
    build_image_cache(cifs, root, 8, scheduler="synchronous")
    assert calls == []
    assert not list(root.rglob("*.part"))


def test_deleted_image_is_rebuilt(tmp_path):
    cifs = {"a": example_cif_path("chain")}
    recs = build_image_cache(cifs, tmp_path, 8, scheduler="synchronous")
    (tmp_path / recs["a"]["npy"]).unlink()
    recs = build_image_cache(cifs, tmp_path, 8, scheduler="synchronous")
    assert load_image(tmp_path, recs["a"]).shape == (len(CHANNELS), 8, 8)


def test_dask_local_cluster_path(tmp_path):
    pytest.importorskip("distributed")
    cifs = {"a": example_cif_path("NaCl"), "b": example_cif_path("chain"),
            "c": example_cif_path("corrupt")}
    recs = build_image_cache(cifs, tmp_path, 8, n_workers=1)
    assert recs["a"]["formula"] == "NaCl" and recs["b"]["n_bonds"] == 2 and "error" in recs["c"]
    assert recs.keys() == cifs.keys() and cache_key("a", 8) == f"a@s8@v{IMAGE_VERSION}"
