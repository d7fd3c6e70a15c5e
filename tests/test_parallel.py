"""ResultCache and map_cached: persistence, error records, resume, a real (tiny) Dask cluster."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

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


def test_everything_cached_starts_no_cluster(tmp_path, monkeypatch):
    from andersonn import parallel

    def no_cluster(*a, **kw):
        raise AssertionError("a cluster was started although every item is cached")

    monkeypatch.setattr(parallel, "_client", no_cluster)
    cache = ResultCache(tmp_path / "c.sqlite")
    map_cached(_square, {"a": 2, "b": 3}, cache, scheduler="synchronous", progress=False)
    assert map_cached(_square, {"a": 2, "b": 3}, cache, progress=False) == {"a": {"sq": 4}, "b": {"sq": 9}}


def test_a_cluster_that_fails_to_start_names_the_cause_and_the_fix(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import dask.distributed

    from andersonn.parallel import ClusterStartError

    def nanny_fails(*a, **kw):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(dask.distributed, "LocalCluster", nanny_fails)
    with pytest.raises(ClusterStartError, match=r'Nanny failed to start.*`if __name__ == "__main__":`.*'
                                                r'scheduler="synchronous"'):
        map_cached(_square, {"a": 2}, ResultCache(tmp_path / "c.sqlite"), n_workers=1, progress=False)


def test_unguarded_script_gets_one_clear_line(tmp_path):
    """A script that starts the local cluster without a __main__ guard: its spawned workers import it again."""
    import os
    import subprocess
    import sys

    pytest.importorskip("distributed")
    script = tmp_path / "unguarded.py"
    script.write_text("import sys\nfrom andersonn.parallel import ResultCache, map_cached\n"
                      "map_cached(abs, {'a': -1}, ResultCache(sys.argv[1]), n_workers=1, progress=False)\n")
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "c.sqlite")], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("andersonn.parallel.ClusterStartError: could not start a local Dask cluster"), p.stderr[-2000:]
    assert '`if __name__ == "__main__":`' in last and 'scheduler="synchronous"' in last
    assert f"a Dask worker process importing {script} was asked to start a local cluster" in p.stderr


def _start_scheduler(tmp_path, env, procs) -> str:
    """A `dask scheduler` process on localhost (appended to ``procs``); returns its address."""
    import json
    import subprocess
    import sys
    import time

    sched_file = tmp_path / "scheduler.json"
    procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                                   str(sched_file), "--port", "0", "--no-dashboard", "--host", "127.0.0.1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for _ in range(120):
        if sched_file.exists() and sched_file.stat().st_size:
            break
        time.sleep(0.5)
    return json.loads(sched_file.read_text())["address"]


def _start_worker(address, env, procs, name, *options) -> None:
    """A single-threaded `dask worker` process named ``name`` (appended to ``procs``)."""
    import subprocess
    import sys

    procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-dashboard", "--name", name, *options],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

def _start_killable_pair(tmp_path, env, procs) -> str:
    """A scheduler and two workers without nannies (killing a worker's process kills the worker and nothing
    restarts it; ``procs[2]`` is the first worker), both connected; returns the scheduler's address."""
    from dask.distributed import Client

    address = _start_scheduler(tmp_path, env, procs)
    for k in range(2):
        _start_worker(address, env, procs, f"w{k}", "--no-nanny")
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    return address


def _kill_a_worker_once_imaged(client, driver, worker, chunks: int) -> int:
    """SIGKILLs ``worker`` once the scheduler holds ``chunks`` finished ``geometry_images`` chunks (or gives up
    when ``driver`` ends or after 300 s); returns how many were done when it stopped looking."""
    import os
    import signal
    import time

    done, deadline = 0, time.time() + 300
    while time.time() < deadline and driver.poll() is None:
        done = client.run_on_scheduler(lambda dask_scheduler: sum(
            1 for t in dask_scheduler.tasks.values() if t.state == "memory" and "geometry_images" in t.key))
        if done >= chunks:
            os.kill(worker.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return done


def _stop_cluster(procs) -> None:
    """Stops the processes of ``procs``, workers first and the scheduler (``procs[0]``) last. A worker told to
    stop closes gracefully, which can wait on a scheduler going down at the same moment: after a grace period
    it is killed, so tearing the cluster down never fails or hangs the test."""
    import subprocess

    for proc in [*reversed(procs[1:]), *procs[:1]]:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_label_command_runs_on_a_separately_started_dask_cluster(tmp_path):
    """`--scheduler ADDRESS`: a scheduler and a worker started as their own processes (as on a real
    cluster), the CLI only given the address; the work is done in the worker process."""
    import json
    import os
    import subprocess
    import sys
    import time

    pytest.importorskip("distributed")
    pytest.importorskip("tblite")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    try:
        address = _start_scheduler(tmp_path, env, procs)
        _start_worker(address, env, procs, "remote-worker", "--nworkers", "1")
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            worker_pids = set(client.run(os.getpid).values())
        mols = tmp_path / "m.smi"
        mols.write_text("CO methanol\nCC#N acetonitrile\nC1CC broken\n")
        out = tmp_path / "labels.csv"
        p = subprocess.run([sys.executable, "-m", "andersonn", "label", str(mols), "--method", "gfn2-1conf",
                            "--scheduler", address, "--cache", str(tmp_path / "c.sqlite"), "--out", str(out)],
                           capture_output=True, text=True, timeout=300, env=env)
        assert p.returncode == 0, p.stderr
        text = out.read_text()
        assert "methanol" in text and "acetonitrile" in text and "could not parse" in text
        assert worker_pids and os.getpid() not in worker_pids
        with Client(address, timeout=60) as client:  # the scheduler saw the labelling tasks
            prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert len([p for p in prefixes if p.startswith("map_cached-")]) == 2, prefixes  # two parsable molecules
    finally:
        _stop_cluster(procs)


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(tmp_path):
    """Two `dask worker` processes; one is killed with SIGKILL while `andersonn label --scheduler` runs.
    Its tasks are redone on the other worker: every molecule is labelled exactly once."""
    import csv
    import json
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    pytest.importorskip("distributed")
    pytest.importorskip("tblite")
    smiles = ["CCO", "CC(=O)O", "c1ccccc1O", "CCN", "CC#N", "O=CNc1ccccc1", "CCOC(C)=O", "CC(C)=O", "Oc1ccncc1",
              "CCCl", "NC(=O)c1ccccc1", "COc1ccccc1", "CC(N)=O", "CS(C)=O", "C1CCOC1", "CCCCO", "CCCC(=O)O", "CCOCC",
              "OCC(O)CO", "CCC(=O)CC", "CNC=O", "Clc1ccccc1", "CC(C)O", "OC1CCCCC1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    label = None
    try:
        address = _start_killable_pair(tmp_path, env, procs)
        mols = tmp_path / "m.csv"
        mols.write_text("name,smiles\n" + "".join(f"m{k},{s}\n" for k, s in enumerate(smiles)))
        cache, out = tmp_path / "c.sqlite", tmp_path / "labels.csv"
        label = subprocess.Popen([sys.executable, "-m", "andersonn", "label", str(mols), "--method", "gfn2",
                                  "--scheduler", address, "--cache", str(cache), "--out", str(out)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done_at_kill = 0
        deadline = time.time() + 300
        while time.time() < deadline and label.poll() is None:
            if cache.exists():
                try:
                    with sqlite3.connect(cache, timeout=5) as db:
                        done_at_kill = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
                except sqlite3.OperationalError:  # the table is not created yet
                    done_at_kill = 0
            if done_at_kill >= 3:
                os.kill(procs[2].pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        assert 3 <= done_at_kill < len(smiles), "the worker was not killed mid-run"
        stdout, stderr = label.communicate(timeout=300)
        assert label.returncode == 0, stderr
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert sorted(r["name"] for r in rows) == sorted(f"m{k}" for k in range(len(smiles)))
        assert not [r for r in rows if r.get("error")], [r["error"] for r in rows if r.get("error")]
        with sqlite3.connect(cache) as db:
            assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM records").fetchone() == (len(smiles), len(smiles))
    finally:
        if label is not None and label.poll() is None:
            label.kill()
        _stop_cluster(procs)


def test_an_image_build_with_a_worker_killed_mid_run_matches_a_build_in_one_process(tmp_path):
    """The QM9 image build (chunk files on Dask) on two `dask worker` processes, one killed with SIGKILL
    mid-run: every chunk is built once, and the images are those a build in one process makes."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import textwrap
    import time

    import numpy as np

    pytest.importorskip("distributed")
    pytest.importorskip("tblite")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    build = textwrap.dedent("""
        import sys
        import andersonn.chem.qm9 as qm9
        qm9.CHUNK = 3  # many small chunks, so that a worker dies with some done and some not
        if __name__ == "__main__":
            qm9.build_qm9_cache(sys.argv[1], max_molecules=60, seed=5, scheduler=sys.argv[2] or "synchronous",
                                progress=False)
    """)
    script = tmp_path / "build.py"
    script.write_text(build)
    procs, driver = [], None
    try:
        address = _start_killable_pair(tmp_path, env, procs)
        driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cluster"), address], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done_at_kill, deadline = 0, time.time() + 300
        while time.time() < deadline and driver.poll() is None:
            dbs = list((tmp_path / "cluster").glob("*/records.sqlite"))
            if dbs:
                try:
                    with sqlite3.connect(dbs[0], timeout=5) as db:
                        done_at_kill = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
                except sqlite3.OperationalError:
                    done_at_kill = 0
            if done_at_kill >= 3:
                os.kill(procs[2].pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        assert 3 <= done_at_kill < 20, f"the worker was not killed mid-run ({done_at_kill} of 20 chunks done)"
        _, stderr = driver.communicate(timeout=300)
        assert driver.returncode == 0, stderr
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        _stop_cluster(procs)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "local"), ""], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    (cluster,), (local,) = (tmp_path / "cluster").glob("qm9_*"), (tmp_path / "local").glob("qm9_*")
    # chunk????.npz: the killed worker may leave its half-written temporary (chunkNNNN.npz.*.tmp.npz) behind
    chunks = sorted(p.name for p in local.glob("chunk????.npz"))
    assert len(chunks) == 20 and sorted(p.name for p in cluster.glob("chunk????.npz")) == chunks
    with sqlite3.connect(cluster / "records.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM records").fetchone() == (20, 20)
    for name in chunks:
        a, b = np.load(cluster / name), np.load(local / name)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), (name, key)


def test_screen_imaging_with_a_worker_killed_mid_run_matches_imaging_in_one_process(tmp_path):
    """The screen's imaging (`map_chunks` of `geometry_images`, uncached) on two `dask worker` processes, one
    killed with SIGKILL once some chunks are done: every molecule comes back once, in order, with the image
    a run in one process gives it (the failing SMILES with its reason)."""
    import os
    import pickle
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    import numpy as np

    pytest.importorskip("distributed")
    pytest.importorskip("tblite")
    smiles = ["CCO", "CC(=O)O", "c1ccccc1O", "CCN", "CC#N", "O=CNc1ccccc1", "CCOC(C)=O", "CC(C)=O", "Oc1ccncc1",
              "CCCl", "NC(=O)c1ccccc1", "COc1ccccc1", "CC(N)=O", "CS(C)=O", "C1CCOC1", "CCCCO", "CCCC(=O)O", "CCOCC",
              "OCC(O)CO", "CCC(=O)CC", "CNC=O", "Clc1ccccc1", "CC(C)O", "OC1CCCCC1", "C1CC", "N#Cc1ccccc1",
              "CC(=O)N(C)C", "OCCO", "CCS", "c1ccoc1", "c1ccsc1", "CC(C)(C)O", "NCCO", "CCOC=O", "C=CC#N", "OC=O"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = textwrap.dedent("""
        import pickle, sys
        from functools import partial
        from andersonn.chem.screen import geometry_images
        from andersonn.parallel import map_chunks
        if __name__ == "__main__":
            rows = [{"name": f"m{k}", "smiles": s} for k, s in enumerate(sys.argv[3].split())]
            out = map_chunks(partial(geometry_images, image_size=12), rows, chunk_size=2,
                             scheduler=sys.argv[2] or "synchronous", progress=False)
            with open(sys.argv[1], "wb") as fh:
                pickle.dump(out, fh)
    """)
    script = tmp_path / "image.py"
    script.write_text(run)
    procs, driver = [], None
    n_chunks = len(smiles) // 2
    try:
        address = _start_killable_pair(tmp_path, env, procs)
        from dask.distributed import Client

        with Client(address, timeout=60) as client:  # polls the scheduler for finished chunks
            driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cluster.pkl"), address,
                                       " ".join(smiles)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            done_at_kill = _kill_a_worker_once_imaged(client, driver, procs[2], 3)
        assert 3 <= done_at_kill < n_chunks, f"the worker was not killed mid-run ({done_at_kill} of {n_chunks} chunks done)"
        _, stderr = driver.communicate(timeout=300)
        assert driver.returncode == 0, stderr
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        _stop_cluster(procs)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "local.pkl"), "", " ".join(smiles)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    cluster, local = (pickle.loads((tmp_path / f"{n}.pkl").read_bytes()) for n in ("cluster", "local"))
    assert len(cluster) == len(local) == len(smiles)
    assert [isinstance(r, str) for r in local] == [s == "C1CC" for s in smiles]  # the unclosed ring, with its reason
    for a, b in zip(cluster, local):
        assert (a == b) if isinstance(b, str) else np.array_equal(a, b)


@pytest.mark.parametrize("address", ["garbage", "tcp://127.0.0.1:1"])
def test_a_bad_scheduler_address_is_one_line_naming_it(tmp_path, address):
    """A typo in `--scheduler` (not an address, or nothing listening there) is refused in one line that names
    the address, within the connect timeout, and nothing is computed."""
    from typer.testing import CliRunner

    from andersonn.cli import app

    pytest.importorskip("distributed")
    mols = tmp_path / "m.smi"
    mols.write_text("CO methanol\n")
    r = CliRunner().invoke(app, ["label", str(mols), "--method", "gfn2-1conf", "--scheduler", address,
                                 "--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "l.csv")])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    assert f"could not connect to the Dask scheduler at {address!r}" in lines[0], lines[0]
    assert not (tmp_path / "l.csv").exists()


def test_screen_command_on_a_cluster_with_a_worker_killed_mid_run_matches_a_run_in_one_process(tmp_path):
    """`andersonn screen --scheduler ADDRESS` end to end: the shipped models, images built on two `dask worker`
    processes, one killed with SIGKILL once some image chunks are done. The predictions file equals the one
    `--scheduler synchronous` writes, row for row (the broken SMILES skipped with its reason in both)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("distributed")
    pytest.importorskip("tblite")
    small = ["CCO", "CC(=O)O", "c1ccccc1O", "CCN", "CC#N", "O=CNc1ccccc1", "CCOC(C)=O", "CC(C)=O", "Oc1ccncc1",
             "CCCl", "NC(=O)c1ccccc1", "COc1ccccc1", "CC(N)=O", "C1CCOC1", "CCCCO", "CCCC(=O)O", "CCOCC",
             "OCC(O)CO", "CCC(=O)CC", "CNC=O", "Clc1ccccc1", "CC(C)O", "OC1CCCCC1", "N#Cc1ccccc1", "CC(=O)N(C)C",
             "OCCO", "c1ccoc1", "CC(C)(C)O", "NCCO", "CCOC=O", "C=CC#N", "OC=O"]
    smiles = small * 3 + ["C1CC", "CC(=O)Nc1ccc(O)cc1"]  # 4 chunks of 32: an unclosed ring, and paracetamol (drug-like model)
    mols = tmp_path / "m.csv"
    mols.write_text("name,smiles\n" + "".join(f"m{k},{s}\n" for k, s in enumerate(smiles)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(scheduler: str, out: Path) -> list[str]:
        return [sys.executable, "-m", "andersonn", "screen", str(mols), "--scheduler", scheduler, "--out", str(out)]

    procs, screen = [], None
    n_chunks = -(-len(smiles) // 32)
    try:
        address = _start_killable_pair(tmp_path, env, procs)
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            screen = subprocess.Popen(command(address, tmp_path / "cluster.csv"), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            done_at_kill = _kill_a_worker_once_imaged(client, screen, procs[2], 1)
        ended = None if screen.poll() is None else screen.communicate()[1][-2000:]
        assert 1 <= done_at_kill < n_chunks, (f"the worker was not killed mid-run ({done_at_kill} of {n_chunks} chunks "
                                              f"done; the screen {'ended: ' + ended if ended else 'still ran'})")
        stdout, stderr = screen.communicate(timeout=300)
        assert screen.returncode == 0, stderr
    finally:
        if screen is not None and screen.poll() is None:
            screen.kill()
        _stop_cluster(procs)
    one = subprocess.run(command("synchronous", tmp_path / "local.csv"), env=env, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr
    cluster, local = ((tmp_path / f"{n}.csv").read_text() for n in ("cluster", "local"))
    assert cluster == local
    assert f"{len(smiles) - 1}/{len(smiles)} classified" in stdout
    rows = local.splitlines()
    assert len(rows) == len(smiles) + 1 and "alms-druglike" in rows[-1] and "m96," in local
