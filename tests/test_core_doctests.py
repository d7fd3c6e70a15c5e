"""Run the runnable examples in the docstrings of the solvers, the DEQ layer, models, training
and study modules (chem and materials have their own doctest files)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "andersonn", "andersonn.solvers.registry", "andersonn.solvers.loop", "andersonn.solvers.result", "andersonn.solvers.workspace",
    "andersonn.solvers.broyden",
    "andersonn.deq", "andersonn.models.classifier", "andersonn.models.explicit", "andersonn.models.implicit",
    "andersonn.data", "andersonn.train.config", "andersonn.train.trainer", "andersonn.study.residuals",
    "andersonn.runtime", "andersonn.data.registry", "andersonn.study.metrics", "andersonn.study.evaluation",
    "andersonn.fileio", "andersonn.train.saved_model", "andersonn.study.report", "andersonn.extras",
    "andersonn.study.calibration", "andersonn.jacobian",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL)
    assert res.attempted > 0, f"{name} has no docstring example"
    assert res.failed == 0
