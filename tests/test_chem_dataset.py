"""The alms-polarity dataset: shapes, COVID drugs held out, threshold, npz cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from andersonn.chem.dataset import POLARITY_THRESHOLD_DEBYE, load_polarity, polarity_class
from andersonn.chem.image import N_CHANNELS
from andersonn.chem.sources import XTB_LABELS_CSV

pytestmark = pytest.mark.skipif(not XTB_LABELS_CSV.exists(), reason="shipped xTB label file missing")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    cache = tmp_path_factory.mktemp("cache")
    return load_polarity(cache, image_size=48, max_molecules=300, n_qm9=200, seed=0), cache


def test_shapes_types_and_classes(small: tuple[dict, Path]) -> None:
    d, _ = small
    assert set(d) == {"x_train", "y_train", "x_test", "y_test", "class_names", "meta"}
    assert d["x_train"].dtype == np.float32 and d["y_train"].dtype == np.int64
    assert d["x_train"].shape[1:] == (N_CHANNELS, 48, 48) and d["x_test"].shape[1:] == (N_CHANNELS, 48, 48)
    assert len(d["x_train"]) == len(d["y_train"]) and len(d["x_test"]) == len(d["y_test"])
    assert d["class_names"] == ["weakly polar", "strongly polar"]
    assert set(np.unique(d["y_train"])) == {0, 1}
    assert d["meta"]["threshold_debye"] == POLARITY_THRESHOLD_DEBYE
    bal = d["meta"]["class_balance"]["train"]
    assert bal["weakly polar"] + bal["strongly polar"] == len(d["y_train"])


def test_covid_drugs_only_in_test(small: tuple[dict, Path]) -> None:
    d, _ = small
    meta = d["meta"]
    idx = meta["covid_test_indices"]
    assert len(idx) == len(meta["covid_names"]) >= 20
    assert idx == list(range(len(d["y_test"]) - len(idx), len(d["y_test"])))
    assert list(d["y_test"][idx]) == [polarity_class(v) for v in meta["covid_dipoles_debye"]]
    train = {x.tobytes() for x in d["x_train"]}
    assert not any(d["x_test"][i].tobytes() in train for i in idx)
    oversize = {s["name"] for s in meta["skipped"] if "exceed the image size" in s["reason"]}
    assert "ivermectin" in oversize and "ivermectin" not in meta["covid_names"]


def test_second_load_is_cached_and_identical(small: tuple[dict, Path]) -> None:
    d, cache = small
    t0 = time.perf_counter()
    d2 = load_polarity(cache, image_size=48, max_molecules=300, n_qm9=200, seed=0)
    assert time.perf_counter() - t0 < 2.0
    assert np.array_equal(d["x_train"], d2["x_train"]) and np.array_equal(d["y_test"], d2["y_test"])
    assert np.array_equal(d["x_test"], d2["x_test"])  # crop-packed cache round-trips exactly
    assert d2["meta"]["covid_names"] == d["meta"]["covid_names"]
