"""Training: resume after an interruption, data-parallel replicas, bad flags, report files."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from andersonn.train import ConfigError, TrainConfig, load_trained, recalibrate_batchnorm, train, trainer

TINY = dict(dataset="digits", dataset_options={"image_size": 8}, max_train=200, max_test=60, channels=16,
            inner_channels=16, batch_size=50, max_iter=8, backward_max_iter=8, tol=1e-2, backward_tol=1e-2)


def tiny(tmp_path, name, **kw):
    return TrainConfig(**(TINY | {"out_dir": str(tmp_path / name)} | kw))


def test_resume_after_interrupt_gives_identical_parameters(tmp_path):
    full = train(tiny(tmp_path, "full", epochs=2, checkpoint_every=2), progress=False)
    assert full.completed and len(full.metrics) == 2
    cut = tiny(tmp_path, "cut", epochs=2, checkpoint_every=2)
    partial = train(cut, progress=False, stop_after_steps=7)  # killed mid-epoch 2 (4 steps/epoch)
    assert not partial.completed and (tmp_path / "cut" / "checkpoint.pt").exists()
    with pytest.raises(ConfigError, match="--resume"):
        train(cut, progress=False)
    resumed = train(cut, resume=True, progress=False)
    assert resumed.completed
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["train_loss"] for m in full.metrics] == [m["train_loss"] for m in resumed.metrics]


def test_phantom_backward_trains_and_is_saved_with_its_steps(tmp_path):
    r = train(tiny(tmp_path, "run", epochs=1, backward="phantom", phantom_steps=3), progress=False)
    assert r.completed and r.summary["backward_nfe"] == 0  # no adjoint solve
    model, meta = load_trained(tmp_path / "run")
    assert model.deq.backward == "phantom" and model.deq.phantom_steps == 3 and meta["config"]["phantom_steps"] == 3


def test_metrics_and_model_files_are_written_and_reloadable(tmp_path):
    r = train(tiny(tmp_path, "run", epochs=1, solver="forward"), progress=False)
    out = tmp_path / "run"
    rows = json.loads((out / "metrics.json").read_text())
    assert set(rows[0]) >= {"train_accuracy", "test_accuracy", "epoch_time_s", "forward_nfe", "backward_nfe"}
    assert (out / "metrics.csv").read_text().startswith("epoch,train_loss")
    model, meta = load_trained(out)
    assert meta["config"]["solver"] == "forward"
    assert r.summary["params"] == sum(p.numel() for p in model.parameters())
    assert r.summary["forward_nfe"] > 1 and r.summary["backward_nfe"] > 1


@pytest.mark.parametrize("kw, pattern", [
    (dict(solver="forward", solver_options={"m": 3}), "--solver-option: unknown option 'm' for solver 'forward'"),
    (dict(backward="jfb", backward_solver="anderson"), "no effect with --backward jfb"),
    (dict(solver="newton"), "not a registered solver"),
    (dict(tol=0.0), "--tol"),
    (dict(solver_options={"lam": -1.0}), "lam must be"),
    (dict(arch="explicit"), "--tol, --max-iter, --backward-tol, --backward-max-iter: solver options have no effect"),
    (dict(bn_recalibrate=-1), "--bn-recalibrate"),
    (dict(phantom_steps=3), "--phantom-steps: no effect without --backward phantom"),
    (dict(backward="phantom", phantom_damping=0.0), r"--phantom-damping must be in \(0, 1\]"),
    (dict(backward="phantom", backward_solver="forward"), "no effect with --backward phantom"),
])
def test_bad_flag_combinations_are_rejected(tmp_path, kw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        train(tiny(tmp_path, "bad", **kw), progress=False)


@pytest.mark.slow
def test_cli_reports_bad_flags_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "andersonn", "train", "--solver", "forward", "--m", "3",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert p.returncode == 2 and "error: --m: Anderson options, with no effect with --solver forward" in p.stderr
    assert "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "andersonn", "train", "--dataset", "cifar10", "--data-dir",
                        str(tmp_path / "missing"), "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_equal_replicas(tmp_path):
    out = tmp_path / "ddp"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "andersonn", "train", "--out", str(out), "--dataset", "digits", "--image-size", "8",
           "--max-train", "200", "--max-test", "60", "--epochs", "1", "--batch-size", "50", "--max-iter", "8",
           "--backward-max-iter", "8", "--tol", "1e-2", "--backward-tol", "1e-2", "--device", "cpu"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["replica_param_max_diff"] == 0.0
    assert summary["params"] > 0 and 0.0 <= summary["test_accuracy"] <= 1.0


def test_explicit_baseline_trains_with_same_parameter_count(tmp_path):
    deq = train(tiny(tmp_path, "deq", epochs=1), progress=False)
    solver_keys = ("max_iter", "backward_max_iter", "tol", "backward_tol")
    cnn_cfg = TrainConfig(**{k: v for k, v in TINY.items() if k not in solver_keys},
                          out_dir=str(tmp_path / "cnn"), epochs=1, arch="explicit")
    cnn = train(cnn_cfg, progress=False)
    assert cnn.summary["params"] == deq.summary["params"]
    assert cnn.summary["forward_nfe"] == 0.0 and 0.0 <= cnn.summary["test_accuracy"] <= 1.0
    model, meta = load_trained(tmp_path / "cnn")
    assert meta["model"]["arch"] == "explicit"


def test_batchnorm_recalibration_gives_the_statistics_of_the_final_weights():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3, momentum=0.1))
    x = torch.randn(40, 2, 4, 4) * 3 + 1
    net.train()
    net(x[:10])  # one momentum update: far from the data's statistics
    assert recalibrate_batchnorm(net, x, 10, torch.device("cpu")) == 1
    bn = net[1]
    with torch.no_grad():
        h = net[0](x)
    assert torch.allclose(bn.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    # the average of per-batch unbiased variances, close to the full-data variance
    assert torch.allclose(bn.running_var, h.var((0, 2, 3)), rtol=0.05)
    assert bn.momentum == 0.1 and net.training


def test_eval_after_recalibration_matches_train_mode_statistics(tmp_path):
    """The trainer recalibrates at each epoch end: eval-mode BatchNorm then normalises the
    stem output the way train mode did, so the DEQ sees the injection it was trained on."""
    run = train(tiny(tmp_path, "run", epochs=1), progress=False)
    model, _ = load_trained(run.out_dir)
    from andersonn.data import load_dataset
    x = load_dataset("digits", image_size=8).x_train[:200]
    stem_bn = model.stem[1]
    with torch.no_grad():
        h = model.stem[0](x)
    assert torch.allclose(stem_bn.running_mean, h.mean((0, 2, 3)), atol=1e-4)
    off = train(tiny(tmp_path, "off", epochs=1, bn_recalibrate=0), progress=False)
    off_model, _ = load_trained(off.out_dir)
    assert not torch.allclose(off_model.stem[1].running_mean, h.mean((0, 2, 3)), atol=1e-4)


def test_resume_refuses_a_checkpoint_from_an_older_version(tmp_path):
    cfg = tiny(tmp_path, "old", epochs=2, checkpoint_every=2)
    train(cfg, progress=False, stop_after_steps=2)
    ckpt = tmp_path / "old" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=False)
    assert state["format"] == trainer.CHECKPOINT_FORMAT
    # What a checkpoint written before `bn_recalibrate` and the format field existed looks like.
    del state["format"], state["config"]["bn_recalibrate"]
    torch.save(state, ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(ConfigError, match=r"predates the settings \['bn_recalibrate'\]"):
        train(cfg, resume=True, progress=False)
    assert ckpt.read_bytes() == before  # nothing lost


def _with_validation(seed=0):
    """Digits at 8x8 with a validation split carved from the training images."""
    from andersonn.data import ImageDataset, load_dataset

    ds = load_dataset("digits", image_size=8)
    return ImageDataset("digits", ds.x_train[:200], ds.y_train[:200], ds.x_test[:60], ds.y_test[:60],
                        ds.class_names, x_val=ds.x_train[200:260], y_val=ds.y_train[200:260])


def test_validation_split_chooses_the_epoch_and_test_is_evaluated_once(tmp_path, monkeypatch):
    from andersonn.train import trainer

    calls = []
    real = trainer.evaluate

    def counting(model, x, y, *a, **kw):
        calls.append(int(x.shape[0]))
        return real(model, x, y, *a, **kw)

    monkeypatch.setattr(trainer, "evaluate", counting)
    ds = _with_validation()
    r = train(tiny(tmp_path, "val", epochs=3, label_smoothing=0.1), progress=False, dataset=ds)
    assert calls.count(60) == 4  # 3 validation passes (60 images) + 1 test pass (60 images)
    assert r.summary["test_evaluations"] == 1 and r.summary["val_size"] == 60
    assert all("test_accuracy" not in m and "val_accuracy" in m for m in r.metrics)
    best = max(range(3), key=lambda i: (r.metrics[i]["val_accuracy"], -r.metrics[i]["val_loss"]))
    assert r.summary["chosen_epoch"] == best + 1
    # the saved weights are the chosen epoch's: their validation accuracy is the one recorded
    model, _ = load_trained(tmp_path / "val")
    ev = real(model, ds.x_val, ds.y_val, 50, torch.device("cpu"))
    assert ev["accuracy"] == pytest.approx(r.summary["val_accuracy"])


def test_patience_stops_and_resume_keeps_the_best_state(tmp_path, monkeypatch):
    from andersonn.train import trainer

    real = trainer._sharded_eval
    scores = iter([0.5, 0.4, 0.3, 0.2] * 3)

    def worsening(net, x, y, *a):  # validation accuracy that only falls after epoch 1
        out = real(net, x, y, *a)
        return out | {"accuracy": next(scores)} if x.shape[0] == 60 else out

    monkeypatch.setattr(trainer, "_sharded_eval", worsening)
    ds = _with_validation()
    full = train(tiny(tmp_path, "full", epochs=4, patience=1), progress=False, dataset=ds)
    assert full.summary["stopped_early"] and full.summary["epochs_run"] == 2 and full.summary["chosen_epoch"] == 1
    scores = iter([0.5, 0.4, 0.3, 0.2] * 3)
    cut_cfg = tiny(tmp_path, "cut", epochs=4, patience=1)
    train(cut_cfg, progress=False, dataset=ds, stop_after_steps=6)  # stopped inside epoch 2
    resumed = train(cut_cfg, resume=True, progress=False, dataset=ds)
    assert resumed.summary["chosen_epoch"] == 1 and resumed.summary["epochs_run"] == 2
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_patience_without_validation_split_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="validation split"):
        train(tiny(tmp_path, "p", epochs=2, patience=2), progress=False)


@pytest.mark.parametrize("kw, pattern", [
    (dict(max_train=-5), "--max-train must be >= 1"),
    (dict(max_train=0), "--max-train must be >= 1"),
    (dict(max_test=0), "--max-test must be >= 1"),
    (dict(dataset_options={"image_size": 0}), "--image-size must be a positive integer"),
    (dict(device="foo"), "--device must be 'auto', 'cpu' or 'cuda'"),
    (dict(label_smoothing=1.0), "--label-smoothing"),
    (dict(jacobian_reg=-0.1), "--jacobian-reg must be a finite number >= 0"),
    (dict(jacobian_reg=float("nan")), "--jacobian-reg must be a finite number >= 0"),
])
def test_flags_that_were_silently_misread_are_refused(tmp_path, kw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        train(tiny(tmp_path, "bad", **kw), progress=False)


def test_out_that_is_a_file_and_a_corrupt_checkpoint_are_one_line_errors(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a run folder"):
        train(tiny(tmp_path, "file"), progress=False)
    cfg = tiny(tmp_path, "run", epochs=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"\x80\x04truncated")
    with pytest.raises(ConfigError, match=r"checkpoint.pt: not a readable checkpoint"):
        train(cfg, resume=True, progress=False)


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        train(tiny(tmp_path, "run", epochs=1, max_train=100), progress=False)
    finally:
        os.umask(old)
    for name in ("checkpoint.pt", "config.json", "metrics.json", "summary.json", "model.safetensors"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


@pytest.mark.slow
def test_cli_has_lr_min_and_rejects_unknown_dataset_options(tmp_path):
    p = subprocess.run([sys.executable, "-m", "andersonn", "train", "--help"], capture_output=True, text=True,
                       env=os.environ | {"COLUMNS": "200"})
    assert "--lr-min" in p.stdout
    p = subprocess.run([sys.executable, "-m", "andersonn", "train", "--dataset-option", "colour=red",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert p.returncode == 2 and "has no option 'colour'" in p.stderr and "Traceback" not in p.stderr


def test_export_best_of_an_unfinished_run(tmp_path):
    from andersonn.train import export_best

    ds = _with_validation()
    cfg = tiny(tmp_path, "long", epochs=3, checkpoint_every=2)
    train(cfg, progress=False, dataset=ds, stop_after_steps=6)  # epoch 1 done, stopped inside epoch 2
    info = export_best(tmp_path / "long", tmp_path / "export", dataset=ds)
    assert info["interim"] and info["chosen_epoch"] == 1 and info["epochs_done"] == 1
    model, meta = load_trained(tmp_path / "export")
    ev = trainer.evaluate(model, ds.x_val, ds.y_val, 50, torch.device("cpu"))
    assert ev["accuracy"] == pytest.approx(info["val_accuracy"])
    with pytest.raises(ConfigError, match="no validated epoch"):
        train(tiny(tmp_path, "early", epochs=2, checkpoint_every=2), progress=False, dataset=ds, stop_after_steps=2)
        export_best(tmp_path / "early", tmp_path / "x", dataset=ds)


def _jacobian_of(run_dir, x):
    model, _ = load_trained(run_dir)
    model.deq.jacobian_penalty = True
    torch.manual_seed(0)
    model.deq(model.stem(x))
    return model.deq.last_jacobian.item()


def test_jacobian_penalty_makes_the_map_more_contractive(tmp_path):
    """Same run with and without the penalty: the trained map's ||df/dz||_F^2/dim is smaller with it,
    its logged value falls over the epochs, and the penalised model still learns."""
    plain = train(tiny(tmp_path, "plain", epochs=2), progress=False)
    pen = train(tiny(tmp_path, "pen", epochs=2, jacobian_reg=5.0), progress=False)
    assert plain.metrics[-1].get("jacobian_fro2") is None
    assert pen.metrics[-1]["jacobian_fro2"] < pen.metrics[0]["jacobian_fro2"]
    x = torch.randn(50, 1, 8, 8)
    assert _jacobian_of(tmp_path / "pen", x) < _jacobian_of(tmp_path / "plain", x)
    assert pen.metrics[-1]["train_accuracy"] > 0.3
    assert "jacobian_fro2" in (tmp_path / "pen" / "metrics.csv").read_text().splitlines()[0]


def test_explicit_arch_refuses_the_jacobian_penalty(tmp_path):
    solver_keys = ("max_iter", "backward_max_iter", "tol", "backward_tol")
    cfg = TrainConfig(**{k: v for k, v in TINY.items() if k not in solver_keys},
                      out_dir=str(tmp_path / "cnn"), epochs=1, arch="explicit", jacobian_reg=1.0)
    with pytest.raises(ConfigError, match="--jacobian-reg"):
        train(cfg, progress=False)


def test_resume_ignores_checkpoint_cadence_and_names_each_differing_setting(tmp_path):
    cfg = tiny(tmp_path, "run", epochs=2, checkpoint_every=1)
    train(cfg, progress=False, stop_after_steps=1)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(ConfigError) as err:
        train(tiny(tmp_path, "run", epochs=2, lr=0.01, max_iter=6, dataset_options={"image_size": 9}),
              resume=True, progress=False)
    assert str(err.value) == (f"--resume with settings that differ from {ckpt}: --image-size 8 (saved) vs 9 (asked); "
                              "--max-iter 8 (saved) vs 6 (asked); --lr 0.001 (saved) vs 0.01 (asked)")
    with pytest.raises(ConfigError, match=r"unfinished run of 2 epochs \(0 done\); finish it with --epochs 2"):
        train(tiny(tmp_path, "run", epochs=3), resume=True, progress=False)
    # only the checkpoint cadence changed: resumed, not refused
    resumed = train(tiny(tmp_path, "run", epochs=2, checkpoint_every=0), resume=True, progress=False, stop_after_steps=1)
    assert not resumed.completed


def test_finished_run_is_extended_with_more_epochs(tmp_path):
    import math

    first = train(tiny(tmp_path, "run", epochs=2), progress=False)
    saved = [dict(m) for m in first.metrics]
    longer = train(tiny(tmp_path, "run", epochs=4), resume=True, progress=False)
    assert longer.completed and len(longer.metrics) == 4
    assert longer.metrics[:2] == saved  # the finished epochs are kept as they were
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(rows) == 4 and rows[:2] == saved
    assert longer.summary["extended_from_epochs"] == 2 and longer.summary["epochs"] == 4
    assert longer.summary["extensions"] == [{"from_epochs": 2, "to_epochs": 4, "at_step": 8}]
    # the cosine schedule is the one of 4 epochs (4 steps each) from step 8 on: after epoch 3, step 12 of 16
    lr, lr_min = TrainConfig.lr, TrainConfig.lr_min
    assert saved[-1]["lr"] == pytest.approx(lr_min)
    assert longer.metrics[2]["lr"] == pytest.approx(lr_min + (lr - lr_min) * (1 + math.cos(math.pi * 12 / 16)) / 2)
    assert longer.metrics[3]["lr"] == pytest.approx(lr_min)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["extended_from_epochs"] == 2
    with pytest.raises(ConfigError, match=r"--resume --epochs 3 is fewer than the 4 epochs .*checkpoint.pt has already "
                                          r"trained; a run cannot be shortened"):
        train(tiny(tmp_path, "run", epochs=3), resume=True, progress=False)


KILL_RANK_1 = """
import os, signal, sys
import torch
if os.environ.get("RANK") == "1":  # this rank dies (SIGKILL, as an OOM kill would) before its 5th optimiser step
    real, steps = torch.optim.Adam.step, [0]
    def step(self, *args, **kwargs):
        steps[0] += 1
        if steps[0] == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *args, **kwargs)
    torch.optim.Adam.step = step
from andersonn.cli import main
sys.argv = ["andersonn"] + sys.argv[1:]
main()
"""


def test_peer_failure_keeps_the_launchers_sigterm_from_cutting_off_the_error():
    """torchrun's SIGTERM follows a collective's failure within milliseconds: once a peer has failed it is
    ignored, so the rank lives to print its line; a run that ends normally gets its old handler back."""
    import signal

    from andersonn.train import TrainingError
    from andersonn.train import distributed as D

    two = D.DistInfo(rank=0, world_size=2)
    before = signal.getsignal(signal.SIGTERM)
    try:
        with D.peer_failures_raise(TrainingError, two):
            assert signal.getsignal(signal.SIGTERM) not in (before, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGTERM) == before
        with pytest.raises(TrainingError, match="a peer has probably stopped"):
            with D.peer_failures_raise(TrainingError, two):
                raise RuntimeError("[gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer")
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: this test goes on
        signal.signal(signal.SIGTERM, before)
        with pytest.raises(ValueError):  # not a peer's failure: passed through, handler restored
            with D.peer_failures_raise(TrainingError, two):
                raise ValueError("a bug of this rank")
        assert signal.getsignal(signal.SIGTERM) == before
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.slow
def test_ddp_run_whose_rank_dies_says_so_and_resumes_from_its_last_checkpoint(tmp_path):
    """Two ranks; rank 1 is killed mid-epoch. The surviving rank stops with one line naming the cause
    and the fix, and `--resume` continues from the last checkpoint to the same parameters as a run
    that was never interrupted."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    wrapper = tmp_path / "kill_rank_1.py"
    wrapper.write_text(KILL_RANK_1)
    args = ["train", "--dataset", "digits", "--image-size", "8", "--max-train", "400", "--max-test", "60",
            "--epochs", "1", "--batch-size", "50", "--max-iter", "8", "--backward-max-iter", "8", "--tol", "1e-2",
            "--backward-tol", "1e-2", "--device", "cpu", "--checkpoint-every", "2", "--bn-recalibrate", "0"]

    def torchrun(script, out, *extra, port):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               *script, *args, "--out", str(out), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)

    cut = tmp_path / "cut"
    p = torchrun([str(wrapper)], cut, port=29531)
    assert p.returncode != 0
    lines = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert lines and "rank 0 of 2" in lines[0] and "--resume" in lines[0], p.stderr[-3000:]
    assert "[rank0]:" not in p.stderr  # no traceback from the surviving rank (torchrun's own summary follows)
    ck = torch.load(cut / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 4 and not (cut / "model.safetensors").exists()
    p = torchrun(["-m", "andersonn"], cut, "--resume", port=29532)
    assert p.returncode == 0, p.stderr[-3000:]
    full = tmp_path / "full"
    p = torchrun(["-m", "andersonn"], full, port=29533)
    assert p.returncode == 0, p.stderr[-3000:]
    a, b = load_file(cut / "model.safetensors"), load_file(full / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_warm_start_cuts_forward_evaluations_and_resumes_identically(tmp_path):
    kw = dict(epochs=2, checkpoint_every=2, tol=1e-3, max_iter=20)
    cold = train(tiny(tmp_path, "cold", **kw), progress=False)
    warm = train(tiny(tmp_path, "warm", warm_start=True, **kw), progress=False)
    assert warm.metrics[0]["forward_nfe"] == cold.metrics[0]["forward_nfe"]  # nothing cached in epoch 1
    assert warm.metrics[1]["forward_nfe"] < cold.metrics[1]["forward_nfe"]
    cut = tiny(tmp_path, "cut", warm_start=True, **kw)
    train(cut, progress=False, stop_after_steps=6)  # killed mid-epoch 2: the cache travels in the checkpoint
    resumed = train(cut, resume=True, progress=False)
    assert [m["forward_nfe"] for m in resumed.metrics] == [m["forward_nfe"] for m in warm.metrics]
    a = load_file(str(tmp_path / "warm" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="--warm-start-float16: no effect without --warm-start"):
        tiny(tmp_path, "x", warm_start_float16=True).validate()
    with pytest.raises(ConfigError, match="--warm-start-max-mb: no effect without --warm-start"):
        tiny(tmp_path, "x", warm_start_max_mb=10.0).validate()
    with pytest.raises(ConfigError, match="--warm-start-max-mb must be"):
        tiny(tmp_path, "x", warm_start=True, warm_start_max_mb=0.0).validate()


def test_channel_sum_readout_gets_its_own_learning_rate_and_the_scale_needs_the_readout(tmp_path):
    cfg = tiny(tmp_path, "sums", channel_sums=True, channel_sums_lr_scale=10.0, lr=2e-3)
    model = trainer.build_model(cfg, (1, 8, 8), 10)
    groups = trainer._param_groups(model, cfg)
    readout = {id(p) for p in model.channel_sums.parameters()}
    assert [len(g["params"]) for g in groups] == [sum(1 for _ in model.parameters()) - len(readout), len(readout)]
    assert {id(p) for p in groups[1]["params"]} == readout and groups[1]["lr"] == pytest.approx(2e-2)
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2e-3, 2e-2])
    # scale 1 keeps the single group that checkpoints of runs without the option hold
    plain = tiny(tmp_path, "plain", channel_sums=True)
    assert len(trainer._param_groups(trainer.build_model(plain, (1, 8, 8), 10), plain)) == 1
    for bad, match in ((dict(channel_sums_lr_scale=10.0), "without --channel-sums"),
                       (dict(channel_sums=True, channel_sums_lr_scale=0.0), "> 0"),
                       (dict(channel_sums=True, channel_sums_lr_scale=float("nan")), "> 0")):
        with pytest.raises(ConfigError, match=match):
            tiny(tmp_path, "bad", **bad).validate()


def test_a_width_the_layer_cannot_group_is_refused_by_the_config():
    from andersonn.train import ConfigError

    with pytest.raises(ConfigError, match=r"--inner-channels must be a positive multiple of 8 .*got 12"):
        TrainConfig(inner_channels=12).validate()
    TrainConfig(channels=8, inner_channels=16).validate()
    TrainConfig(channels=12, inner_channels=12, groups=4).validate()  # the check follows the config's own groups
    with pytest.raises(ConfigError, match=r"--channels must be a positive multiple of 16 .*got 24"):
        TrainConfig(channels=24, inner_channels=32, groups=16).validate()
