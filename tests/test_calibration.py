"""Probability recalibration (andersonn.study.calibration) and its use by `andersonn screen`."""

import json
import shutil

import numpy as np
import pytest
import torch

from andersonn.study.calibration import LogitScaling, expected_calibration_error, fit_logit_scaling, softmax


def _overconfident(n=6000, sharpness=5.0, shift=0.0, seed=0):
    """Logits of a model `sharpness` times too confident, whose inputs moved by `shift` in the margin."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    margin = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.0, n)   # true P(y=1 | m) = sigmoid(2 m)
    return np.stack([np.zeros(n), sharpness * (margin + shift)], 1), y


def _nll(p, y):
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))


def test_fit_recovers_scale_and_bias_and_improves_held_out_calibration():
    logits, y = _overconfident(shift=-0.5)
    s = fit_logit_scaling(logits[:3000], y[:3000])
    # the exact recalibration is 2/5 * logit + 2 * 0.5
    assert s.scale == pytest.approx(0.4, rel=0.1) and s.bias[1] == pytest.approx(1.0, abs=0.15) and s.bias[0] == 0.0
    raw, cal = softmax(logits[3000:]), s.probabilities(logits[3000:])
    assert _nll(cal, y[3000:]) < _nll(raw, y[3000:]) - 0.05
    assert expected_calibration_error(y[3000:], cal[:, 1]) < 0.03 < expected_calibration_error(y[3000:], raw[:, 1])


def test_a_calibrated_model_is_left_almost_alone():
    logits, y = _overconfident(sharpness=2.0)
    s = fit_logit_scaling(logits, y)
    assert s.scale == pytest.approx(1.0, abs=0.1) and abs(s.bias[1]) < 0.1


def test_three_classes_and_torch_logits():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 3000)
    logits = 4 * (np.eye(3)[y] + rng.normal(0, 0.8, (3000, 3)))
    s = fit_logit_scaling(logits, y)
    assert len(s.bias) == 3 and s.scale < 1
    t = s.logits(torch.tensor(logits[:5]))
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), s.logits(logits[:5]))


def test_save_load_roundtrip_and_bad_files(tmp_path):
    s = LogitScaling(0.5, (0.0, 0.25), {"n": 10})
    s.save(tmp_path / "c.json")
    assert LogitScaling.load(tmp_path / "c.json") == s
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="bad.json: not a probability calibration file"):
        LogitScaling.load(tmp_path / "bad.json")
    (tmp_path / "kind.json").write_text(json.dumps({"kind": "temperature", "scale": 1, "bias": [0, 0]}))
    with pytest.raises(ValueError, match="kind.json"):
        LogitScaling.load(tmp_path / "kind.json")
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            LogitScaling(scale, (0.0, 0.0))
    with pytest.raises(ValueError, match="labels"):
        fit_logit_scaling(np.zeros((3, 2)), np.zeros(2, dtype=int))


def test_screen_applies_a_calibration_file_in_the_model_folder(tmp_path):
    from andersonn.data import ImageDataset
    from andersonn.screening import SCREEN_CALIBRATION, load_predictor
    from andersonn.train import TrainConfig, train

    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 2, 6, 6, generator=g)
    y = torch.tensor([0, 1] * 6)
    run = tmp_path / "run"
    cfg = TrainConfig(dataset="alms-qm9", out_dir=str(run), epochs=1, batch_size=12, channels=8, inner_channels=8,
                      groups=4, max_iter=5, backward_max_iter=5, tol=1e-2, backward_tol=1e-2)
    train(cfg, progress=False, dataset=ImageDataset("alms-qm9", x, y, x, y, ["weakly polar", "strongly polar"]))
    raw, meta = load_predictor(run)
    assert "screen_calibration" not in meta
    LogitScaling(0.5, (0.0, 1.0), {"n": 7}).save(run / SCREEN_CALIBRATION)
    cal, meta = load_predictor(run)
    assert meta["screen_calibration"] == {"n": 7}
    p_raw, p_cal = raw(x), cal(x)
    logit_margin = torch.log(p_raw[:, 1] / p_raw[:, 0])
    assert torch.allclose(torch.log(p_cal[:, 1] / p_cal[:, 0]), 0.5 * logit_margin + 1.0, atol=1e-4)
    same, _ = load_predictor(run, calibrated=False)
    assert torch.allclose(same(x), p_raw)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    LogitScaling(1.0, (0.0, 0.0, 0.0)).save(other / SCREEN_CALIBRATION)
    with pytest.raises(ValueError, match="calibration for 3 classes, the model has 2"):
        load_predictor(other)
