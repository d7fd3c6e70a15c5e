"""Dataset registry and loaders, including CIFAR-10 from small files in the real format."""

import pickle

import numpy as np
import pytest
import torch

from andersonn.data import DatasetError, ImageDataset, available_datasets, load_dataset, register_dataset


def write_cifar(folder, n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (n_train, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n_train).tolist(), b"batch_label": b"training batch"}
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch, fh)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
                     b"labels": rng.integers(0, 10, n_test).tolist()}, fh)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": n_train}, fh)


def test_digits_is_registered_and_real():
    ds = load_dataset("digits", image_size=16)
    assert ds.x_train.shape[1:] == (1, 16, 16) and ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert ds.num_classes == 10 and min(ds.summary()["test_class_counts"]) >= 35


def test_cifar10_reads_standard_python_batches(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path)  # parent folder works too
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.class_names[0] == "airplane" and ds.y_train.dtype == torch.int64
    # pixel layout: first 1024 bytes are the red plane of row-major 32x32
    raw = pickle.load(open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb"))[b"data"][0]
    red = (raw[:1024].reshape(32, 32) / 255.0 - 0.4914) / 0.2470
    assert np.allclose(ds.x_test[0, 0].numpy(), red, atol=1e-5)


def test_cifar10_missing_folder_says_what_is_expected(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*data_batch_1"):
        load_dataset("cifar10", data_dir=tmp_path / "nope")
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("cifar10")


@pytest.mark.parametrize("damage", ["garbage", "wrong_shape", "missing_batch", "no_labels"])
def test_cifar10_malformed_files_are_named(tmp_path, damage):
    write_cifar(tmp_path)
    target = tmp_path / "data_batch_3"
    if damage == "garbage":
        target.write_bytes(b"not a pickle at all")
    elif damage == "wrong_shape":
        pickle.dump({b"data": np.zeros((5, 100), np.uint8), b"labels": [0] * 5}, open(target, "wb"))
    elif damage == "missing_batch":
        target.unlink()
    else:
        pickle.dump({b"data": np.zeros((5, 3072), np.uint8)}, open(target, "wb"))
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_registry_rejects_unknown_names_and_options():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match="does not take"):
        load_dataset("digits", colour=True)


def test_new_dataset_plugs_in_without_touching_training():
    @register_dataset("test-tiny", "two classes of constant images")
    def tiny(data_dir=None, image_size: int = 8):
        x = torch.cat([torch.zeros(4, 1, image_size, image_size), torch.ones(4, 1, image_size, image_size)])
        y = torch.tensor([0] * 4 + [1] * 4)
        return ImageDataset("test-tiny", x, y, x, y, ["dark", "light"])

    assert "test-tiny" in available_datasets()
    assert load_dataset("test-tiny", image_size=4).image_shape == (1, 4, 4)
    with pytest.raises(DatasetError, match="int64"):
        ImageDataset("bad", torch.zeros(2, 1, 4, 4), torch.zeros(2), torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64), ["a"])
