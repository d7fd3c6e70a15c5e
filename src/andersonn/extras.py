"""The optional parts of the package, and the one-line error when one is not installed.

``pip install andersonn`` installs the DEQ library: the solvers, the DEQ layer and models,
training, the study and the CLI on the bundled digits data. The ALMS pipelines need extras:

* ``chem`` -- molecules: RDKit images, GFN2-xTB (tblite) and DFT (PySCF) labels, QM9 (qm9pack);
* ``materials`` -- MOF structures: pymatgen and the CoRE MOF 2019 database (core-mof);
* ``dask`` -- :func:`andersonn.parallel.map_cached` on a Dask cluster (``chem`` and ``materials``
  include it: their pipelines run on a local Dask cluster by default);
* ``all`` -- all of them (what ``make install`` installs).

A feature that needs an extra calls :func:`require_extra` before its first heavy import; without
the extra that raises :class:`MissingExtraError`, whose message is one line that names it and
the command that installs it (the CLI prints it as ``error: ...``).

Example:
    >>> require_extra("chem", "screening molecules", modules=["a_module_that_is_not_installed"])
    Traceback (most recent call last):
    ...
    andersonn.extras.MissingExtraError: screening molecules needs the chem extra (a_module_that_is_not_installed is not installed): pip install 'andersonn[chem]'
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable

__all__ = ["EXTRAS", "MissingExtraError", "require_extra", "has_modules"]

#: The import names behind each extra (what :func:`require_extra` checks by default).
EXTRAS: dict[str, tuple[str, ...]] = {
    "chem": ("rdkit", "tblite", "pyscf", "qm9pack", "pandas"),
    "materials": ("pymatgen", "CoRE_MOF"),
    "dask": ("dask", "distributed"),
}


class MissingExtraError(ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra and the
    ``pip install`` command that adds it."""

    def __init__(self, message: str, extra: str = "", missing: str = "") -> None:
        super().__init__(message, name=missing or None)
        self.extra = extra
        self.missing = missing


def _missing(modules: Iterable[str]) -> list[str]:
    out = []
    for name in modules:
        if name in sys.modules:  # imported already, or blocked with sys.modules[name] = None
            if sys.modules[name] is None:
                out.append(name)
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def has_modules(*modules: str) -> bool:
    """Whether every module named can be imported (found without importing it).

    >>> has_modules("json"), has_modules("json", "a_module_that_is_not_installed")
    (True, False)
    """
    return not _missing(modules)


def require_extra(extra: str, feature: str, modules: Iterable[str] | None = None) -> None:
    """Raise :class:`MissingExtraError` unless the modules of ``extra`` (or just ``modules``: those
    ``feature`` imports) are installed. Finds them without importing them, so it costs little."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; the extras are {', '.join(EXTRAS)}")
    missing = _missing(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise MissingExtraError(f"{feature} needs the {extra} extra ({', '.join(missing)} "
                                f"{'is' if len(missing) == 1 else 'are'} not installed): pip install 'andersonn[{extra}]'",
                                extra=extra, missing=missing[0])
