"""Run the runnable examples in the chem/parallel docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "andersonn.parallel", "andersonn.chem.errors", "andersonn.chem.mol", "andersonn.chem.image",
    "andersonn.chem.conformers", "andersonn.chem.qm", "andersonn.chem.labels", "andersonn.chem.sources",
    "andersonn.chem.dataset", "andersonn.chem.screen", "andersonn.chem.geometry", "andersonn.chem.qm9",
    "andersonn.chem.baselines", "andersonn.chem.druglike",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL)
    assert res.attempted > 0, f"{name} has no docstring example"
    assert res.failed == 0
