"""The saved model folder lives in andersonn.train.saved_model, not in the training loop (#16)."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from andersonn.data import load_dataset
from andersonn.train import ConfigError, TrainConfig, build_model, load_trained, save_model, trainer


def test_save_and_load_live_in_their_own_module():
    assert load_trained.__module__ == save_model.__module__ == "andersonn.train.saved_model"
    assert "load_trained" not in vars(trainer) and "_save_model" not in vars(trainer)
    for name in ("andersonn.screening", "andersonn.study.demo", "andersonn.study.m_tradeoff", "andersonn.study.compare"):
        assert importlib.import_module(name).load_trained is load_trained, name


@pytest.mark.parametrize("arch,channel_sums", [("deq", False), ("explicit", False), ("deq", True)])
def test_round_trip_gives_the_same_outputs(tmp_path, arch, channel_sums):
    ds = load_dataset("digits", image_size=8)
    cfg = TrainConfig(dataset="digits", arch=arch, channels=16, inner_channels=16, dataset_options={"image_size": 8},
                      channel_sums=channel_sums)
    torch.manual_seed(0)
    model = build_model(cfg, ds.image_shape, ds.num_classes).eval()
    if channel_sums:  # non-trivial running statistics, so that loading them is tested
        model.channel_sums.norm.running_mean.uniform_()
    save_model(model, cfg, ds, tmp_path / "m")
    loaded, meta = load_trained(tmp_path / "m")
    assert not loaded.training and meta["class_names"] == ds.class_names
    assert (loaded.channel_sums is not None) == channel_sums == meta["model"]["channel_sums"]
    with torch.no_grad():
        assert torch.allclose(loaded(ds.x_test[:8]), model(ds.x_test[:8]), atol=1e-5)


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a trained model folder"):
        load_trained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    (tmp_path / "config.json").write_text(json.dumps({"config": {"nope": 1}}))
    with pytest.raises(ConfigError, match="not a model config written by andersonn train"):
        load_trained(tmp_path)
