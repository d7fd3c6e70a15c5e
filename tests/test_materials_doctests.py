"""Run the runnable examples in the materials docstrings."""

import doctest
import importlib

import pytest

pytest.importorskip("pymatgen")

MODULES = ["cif", "graph", "image", "cache", "pores", "baseline", "screen", "examples", "coremof", "channels",
           "porespace"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"andersonn.materials.{name}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or name == "coremof"  # coremof needs the database
