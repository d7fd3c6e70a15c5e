"""andersonn.fileio: the one atomic-write helper (temporary file beside the target, mode following the
umask, removed on failure) and the one CSV writer."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from andersonn.fileio import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text, current_umask, write_csv
from andersonn.train.checkpoint import atomic_save

SRC = Path(__file__).resolve().parents[1] / "src" / "andersonn"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_current_umask_reads_without_changing_it(umask_027):
    assert current_umask() == 0o027
    assert current_umask() == 0o027


def test_text_and_bytes_follow_the_umask_and_leave_no_temporary(tmp_path, umask_027):
    atomic_write_text("héllo\n", tmp_path / "sub" / "a.txt")  # the folder is created
    atomic_write_bytes(b"\x00\x01", tmp_path / "b.bin")
    assert (tmp_path / "sub" / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _mode(tmp_path / "sub" / "a.txt") == 0o640 and _mode(tmp_path / "b.bin") == 0o640
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "sub"]


def test_a_writer_that_needs_a_path_gets_one_beside_the_target(tmp_path, umask_027):
    from safetensors.torch import load_file, save_file

    target = tmp_path / "model.safetensors"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.exists() and not target.exists()
        save_file({"w": torch.ones(2)}, str(tmp))  # safetensors creates its files 0600 whatever the umask
    assert _mode(target) == 0o640
    assert torch.equal(load_file(str(target))["w"], torch.ones(2))
    with atomic_path(tmp_path / "a.npz", suffix=".tmp.npz") as tmp:
        np.savez(tmp, x=np.arange(3))  # np.savez appends .npz to any other name
    assert np.load(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "model.safetensors"]


@pytest.mark.parametrize("how", ["path", "open", "torch"])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, how):
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    with pytest.raises(Exception):  # noqa: B017 - RuntimeError here, a pickling error from torch.save
        if how == "path":
            with atomic_path(target) as tmp:
                tmp.write_bytes(b"half")
                raise RuntimeError("killed mid-write")
        elif how == "open":
            with atomic_open(target, "wb") as fh:
                fh.write(b"half")
                raise RuntimeError("killed mid-write")
        else:
            atomic_save({"f": lambda: 0}, target)  # a lambda cannot be pickled
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]


def test_checkpoints_follow_the_umask(tmp_path, umask_027):
    atomic_save({"x": torch.arange(3)}, tmp_path / "checkpoint.pt")
    assert _mode(tmp_path / "checkpoint.pt") == 0o640
    assert torch.equal(torch.load(tmp_path / "checkpoint.pt")["x"], torch.arange(3))


def test_atomic_open_refuses_append():
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open("x", "a"):
            pass


def test_no_module_renames_files_into_place_by_hand():
    """One implementation: any other temporary-file-and-rename in the package is a second one to keep right."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "fileio.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"os\.replace\(|tmp\.replace\(|mkstemp\(|NamedTemporaryFile\(|os\.chmod\(", text):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_no_module_writes_csv_by_hand():
    """One CSV writer: the package and its scripts call write_csv instead of csv.writer/DictWriter."""
    root = SRC.parents[1]
    offenders = [str(p.relative_to(root)) for d in ("src", "scripts", "benchmarks") for p in (root / d).rglob("*.py")
                 if p.name != "fileio.py" and re.search(r"csv\.(Dict)?[wW]riter\(", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_write_csv_columns_missing_and_extra_keys(tmp_path, umask_027):
    rows = [{"a": 1, "b": 0.123456}, {"b": None, "c": "x,y"}]
    p = write_csv(rows, tmp_path / "out" / "t.csv")
    assert p == tmp_path / "out" / "t.csv"
    assert p.read_text().splitlines() == ["a,b,c", "1,0.123456,", ',,"x,y"']
    assert _mode(p) == 0o640
    write_csv(rows, p, ["b", "a"], float_digits=2)
    assert p.read_text().splitlines() == ["b,a", "0.12,1", ","]
    write_csv([], p, ["name", "error"])  # no rows: the header alone
    assert p.read_bytes() == b"name,error\r\n"  # csv's own line ends, untranslated


def test_require_text_file_names_the_problem(tmp_path):
    from andersonn.chem.labels import read_molecule_file
    from andersonn.fileio import require_text_file

    with pytest.raises(FileNotFoundError, match="nope: no such file"):
        require_text_file(tmp_path / "nope", "molecules")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.csv: empty file"):
        read_molecule_file(tmp_path / "empty.csv")  # an empty input is refused, not read as no molecules
    (tmp_path / "blob").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="blob: not a text file of structures"):
        require_text_file(tmp_path / "blob", "structures")
    (tmp_path / "cut.txt").write_bytes(b"a" * 4095 + "é".encode())  # a multi-byte character cut at 4 KiB
    assert require_text_file(tmp_path / "cut.txt", "molecules") == tmp_path / "cut.txt"
