"""Exceptions raised by the molecule pipeline."""

from __future__ import annotations

__all__ = ["MoleculeError", "MoleculeTooLargeError"]


class MoleculeError(ValueError):
    """A molecule could not be parsed or processed.

    Carries the offending ``smiles`` (or other identifier) and a ``reason``.

    >>> str(MoleculeError("C1CC", "unclosed ring"))
    "cannot process molecule 'C1CC': unclosed ring"
    """

    def __init__(self, smiles: str, reason: str, name: str | None = None) -> None:
        self.smiles = smiles
        self.reason = reason
        self.name = name
        label = f"{name} ({smiles!r})" if name else repr(smiles)
        super().__init__(f"cannot process molecule {label}: {reason}")


class MoleculeTooLargeError(MoleculeError):
    """The molecule has more heavy atoms than the image has rows."""

    def __init__(self, smiles: str, n_atoms: int, size: int, name: str | None = None) -> None:
        self.n_atoms = n_atoms
        self.size = size
        super().__init__(
            smiles,
            f"{n_atoms} heavy atoms exceed the image size {size} (molecule not truncated)",
            name=name,
        )
