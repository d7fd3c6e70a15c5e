"""Writing files: atomically, with the mode a plain ``open`` gives, and CSV tables.

Every file the package writes (run folders, checkpoints, caches, reports, CSVs) goes through
:func:`atomic_path`: the content is written to a temporary file *in the same folder*, flushed to
disk, given the mode ``0666 & ~umask`` (``mkstemp`` and safetensors create 0600 files, which would
leave results unreadable to a group that shares them), then renamed over the target with
``os.replace``. A process killed at any moment leaves either the old file or the new one, never
a truncated one; if the writer raises, the temporary file is removed and the target is untouched.

* :func:`atomic_write_text`, :func:`atomic_write_bytes` -- a whole file from a string or bytes;
* :func:`atomic_open` -- a file object, for writers that take one (``np.save``, ``torch.save``, ``csv``);
* :func:`atomic_path` -- a temporary path, for writers that want a file name (``np.savez``,
  safetensors' ``save_file``);
* :func:`write_csv` -- rows of dicts as a CSV table, atomically.

Example:
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> atomic_write_text("hello\\n", d / "a.txt"); (d / "a.txt").read_text()
    'hello\\n'
    >>> with atomic_path(d / "arrays.npz", suffix=".tmp.npz") as tmp:
    ...     np.savez(tmp, x=np.arange(3))
    >>> np.load(d / "arrays.npz")["x"].tolist()
    [0, 1, 2]
    >>> _ = write_csv([{"m": 1, "nfe": 12.25}, {"m": 5, "nfe": 8.0, "note": "best"}], d / "t.csv")
    >>> print((d / "t.csv").read_text(), end="")
    m,nfe,note
    1,12.25,
    5,8.0,best
    >>> sorted(p.name for p in d.iterdir())  # no temporary file left behind
    ['a.txt', 'arrays.npz', 't.csv']
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_open", "atomic_write_text", "atomic_write_bytes", "current_umask", "write_csv",
           "require_text_file", "require_output_path", "save_npz"]


def current_umask() -> int:
    """The process's umask (read by setting and restoring it; there is no read-only call).

    >>> old = os.umask(0o027); current_umask() == 0o027; _ = os.umask(old)
    True
    """
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on a clean exit it replaces ``path``.

    The temporary file exists (empty) when the block starts, is named ``<name>.<random><suffix>``
    (pass ``suffix=".tmp.npz"`` for writers such as ``np.savez`` that append their own extension
    to other names), and is removed if the block raises. On success it is flushed to disk, given
    the mode ``0666 & ~umask`` and renamed over ``path``; the parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # Whatever the writer did (rewrote the file, created it anew 0600), give it a plain file's mode.
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, atomically (see :func:`atomic_path`): the file appears,
    complete, when the block ends without an error. ``mode`` is ``"w"`` (text) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "wb":
            with open(tmp, "wb") as fh:
                yield fh
        else:
            with open(tmp, "w", encoding=encoding, newline=newline) as fh:
                yield fh


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_bytes(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def save_npz(path: str | os.PathLike[str], *, compressed: bool = True, **arrays: Any) -> None:
    """``np.savez_compressed`` (or ``np.savez``) of ``arrays`` to ``path`` atomically.

    >>> import tempfile, numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "a.npz"
    >>> save_npz(p, x=np.ones(2)); np.load(p)["x"].tolist()
    [1.0, 1.0]
    """
    import numpy as np

    with atomic_path(path, suffix=".tmp.npz") as tmp:  # np.savez appends .npz to a name without it
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str], fields: Sequence[str] | None = None,
              *, float_digits: int | None = None) -> Path:
    """Write ``rows`` (dicts) to ``path`` as a CSV table with a header line, atomically; returns the path.

    ``fields``: the columns, in order; keys of a row that are not among them are left out, and a
    column a row lacks is empty. Default: every key of every row, in the order first seen. ``None``
    values are written as empty cells. ``float_digits``: write floats with that many decimals
    (default: Python's shortest round-trip form). The parent folder is created if needed.

    >>> import tempfile
    >>> p = write_csv([{"name": "water", "dipole": 1.85467, "extra": 0}], Path(tempfile.mkdtemp()) / "x.csv",
    ...               ["name", "dipole", "error"], float_digits=2)
    >>> print(p.read_text(), end="")
    name,dipole,error
    water,1.85,
    """
    rows = list(rows)
    if fields is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        fields = list(seen)
    path = Path(path)
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            if float_digits is not None:
                row = {k: (f"{v:.{float_digits}f}" if isinstance(v, float) else v) for k, v in row.items()}
            writer.writerow(row)
    return path


def require_text_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a :class:`Path` when it is a non-empty text file; else ``FileNotFoundError`` or
    ``ValueError`` naming it and what was expected (``what``, e.g. "molecules").

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "blob"
    >>> _ = p.write_bytes(bytes(range(256)))
    >>> require_text_file(p, "molecules")
    Traceback (most recent call last):
    ...
    ValueError: ...blob: not a text file of molecules
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise ValueError(f"{path}: empty file (expected {what})")
    try:
        head.decode("utf-8")
        undecodable = False
    except UnicodeDecodeError:
        undecodable = len(head) < 4096  # a multi-byte character cut at 4 KiB is still text
    if b"\0" in head or undecodable:
        raise ValueError(f"{path}: not a text file of {what}")
    return path


def require_output_path(path: str | os.PathLike[str], what: str, kind: str = "file") -> Path:
    """``path`` as a :class:`Path`, or ``ValueError`` naming ``what`` when nothing could ever be written there:
    a parent that is a regular file, a ``kind="file"`` output that is a folder, a ``kind="folder"``
    output that is a file. Checked before any work starts, so a long run does not fail at its end.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "notes.txt").write_text("x")
    1
    >>> require_output_path(d / "run", "--out", "folder") == d / "run"
    True
    >>> require_output_path(d / "notes.txt" / "run", "--out", "folder")
    Traceback (most recent call last):
    ValueError: --out .../notes.txt/run: .../notes.txt is a file, not a folder
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise ValueError(f"{what} {path}: is a file, not a folder")
        if kind == "file" and path.is_dir():
            raise ValueError(f"{what} {path}: is a folder, not a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {path}: {parent} is a file, not a folder")
            break
    return path

