"""Fixed-point correction: the solver's snapshots of intermediate iterates, the DEQ's correction states,
and the trainer's loss on them, each against a computation done by hand."""

from __future__ import annotations

import pytest
import torch

from andersonn import DEQ, solve
from andersonn.deq import correction_iterations
from andersonn.solvers import SolverInputError


def _contraction(a: float = 0.7):
    torch.manual_seed(0)
    w = torch.randn(5, 5, dtype=torch.float64)
    w = a * w / torch.linalg.matrix_norm(w, 2)
    return lambda z, x: torch.tanh(z @ w.T + x)


def test_forward_iteration_snapshots_are_the_unrolled_iterates():
    f = _contraction()
    x = torch.randn(4, 5, dtype=torch.float64)
    r = solve(f, torch.zeros_like(x), method="forward", args=(x,), tol=1e-30, max_iter=12, snapshot_at=(3, 7, 12))
    z, unrolled = torch.zeros_like(x), {}
    for k in range(1, 13):
        z = f(z, x)
        unrolled[k] = z
    assert sorted(r.snapshots) == [3, 7, 12]
    for k in (3, 7):  # the iterate after k evaluations of f is f^k(z0)
        torch.testing.assert_close(r.snapshots[k], unrolled[k], rtol=0, atol=1e-14)
    assert r.snapshots[3].shape == x.shape and r.snapshots[3] is not r.z


def test_a_sample_that_stopped_earlier_gives_its_answer_and_an_unreached_iteration_the_final_one():
    f = _contraction()
    x = torch.randn(6, 5, dtype=torch.float64)
    x[:3] = 0.0  # z* = 0 from z0 = 0: these samples converge at the first check
    for args in ((x,), ()):  # compacted rows, and a closure over the whole batch
        g = (lambda z, xx: f(z, xx)) if args else (lambda z: f(z, x))
        r = solve(g, torch.zeros_like(x), method="anderson", args=args, tol=1e-10, max_iter=60,
                  compact_fraction=0.0, snapshot_at=(5, 59))
        assert int(r.nfe[:3].max()) == 1 and int(r.nfe[3:].min()) > 5
        torch.testing.assert_close(r.snapshots[5][:3], r.z[:3], rtol=0, atol=0)
        assert not torch.allclose(r.snapshots[5][3:], r.z[3:], atol=1e-6)
        assert r.iterations < 59
        torch.testing.assert_close(r.snapshots[59], r.z, rtol=0, atol=0)
    assert solve(f, torch.zeros_like(x), args=(x,)).snapshots == {}


@pytest.mark.parametrize("bad", [(0,), (31,), (2.5,), (True,), 3])
def test_snapshot_iterations_outside_the_solve_are_refused(bad):
    with pytest.raises(SolverInputError, match="snapshot_at"):
        solve(lambda z: 0.5 * z, torch.zeros(1, 2), max_iter=30, snapshot_at=bad)


def test_deq_correction_states_are_one_step_of_f_from_the_snapshots_with_its_gradient():
    torch.manual_seed(1)
    lin = torch.nn.Linear(5, 5).double()
    with torch.no_grad():
        lin.weight.mul_(0.3)
    f = lambda z, x: torch.tanh(lin(z) + x)  # noqa: E731
    deq = DEQ(f, solver="forward", tol=1e-30, max_iter=12, correction_states=2)
    assert correction_iterations(2, 12) == (4, 8)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    deq(x)
    states = deq.last_correction_states
    assert len(states) == 2
    # by hand: z_4 = f^4(0) without a graph, then one step with one
    with torch.no_grad():
        z = torch.zeros_like(x)
        for _ in range(4):
            z = f(z, x)
    ref = f(z, x)
    torch.testing.assert_close(states[0], ref, rtol=0, atol=1e-14)
    (g_ref,) = torch.autograd.grad(ref.sum(), lin.weight)
    (g,) = torch.autograd.grad(states[0].sum(), lin.weight)
    torch.testing.assert_close(g, g_ref)
    # no states outside training, and none without the option
    with torch.no_grad():
        deq(x)
    assert deq.last_correction_states is None
    plain = DEQ(f, solver="forward", max_iter=12)
    plain(x)
    assert plain.last_correction_states is None
    for bad in (-1, 12, 1.5):
        with pytest.raises(SolverInputError, match="correction_states"):
            DEQ(f, max_iter=12, correction_states=bad)


def test_the_trainer_adds_the_weighted_correction_loss_and_the_flags_are_checked(tmp_path):
    from andersonn.models import deq_classifier
    from andersonn.train import ConfigError, TrainConfig

    torch.manual_seed(0)
    net = deq_classifier(3, 8, 2, channels=8, inner_channels=8, groups=2, pool=8, max_iter=10, correction_states=3)
    images = torch.randn(4, 3, 8, 8)
    logits = net(images)
    assert len(net.last_correction_logits) == 3
    assert all(lg.shape == logits.shape for lg in net.last_correction_logits)
    with torch.no_grad():
        net(images)
    assert net.last_correction_logits is None

    cfg = TrainConfig(correction_states=2)
    cfg.validate()
    assert cfg.deq_options()["correction_states"] == 2 and 0 < cfg.resolved_correction_weight
    for bad, match in ((dict(correction_weight=0.5), "no effect without --correction-states"),
                       (dict(correction_states=2, correction_weight=-1.0), "--correction-weight"),
                       (dict(correction_states=30), "--correction-states"),
                       (dict(arch="explicit", correction_states=1), "no effect with --arch explicit")):
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**bad).validate()


def test_correction_states_do_not_move_the_heads_running_statistics():
    from andersonn.models import deq_classifier

    images = torch.randn(6, 3, 8, 8)
    heads = []
    for states in (0, 3):
        torch.manual_seed(0)
        net = deq_classifier(3, 8, 2, channels=8, inner_channels=8, groups=2, pool=8, max_iter=10, correction_states=states)
        net.train()
        logits = net(images)
        heads.append((logits.detach(), {k: v.clone() for k, v in net.head.state_dict().items()}))
        if states:
            assert len(net.last_correction_logits) == 3
            assert net.head[0].momentum == 0.1  # restored
    (plain, plain_head), (corrected, corrected_head) = heads
    assert torch.allclose(plain, corrected, atol=1e-6)
    for key, value in plain_head.items():  # running mean, variance and batch count as if no states were read
        assert torch.equal(value, corrected_head[key]), key


def test_training_with_correction_states_runs_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from andersonn.cli import app

    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--out", str(out), "--epochs", "1", "--max-train", "200", "--max-test", "50",
                                 "--correction-states", "2", "--correction-weight", "0.5"])
    assert r.exit_code == 0, r.output
    import json

    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["correction_states"] == 2 and cfg["correction_weight"] == 0.5
