"""Reused solver buffers (Workspace) must give exactly the answers of fresh ones."""

import copy

import pytest
import torch

import andersonn
from andersonn import DEQ, SolverInputError, Workspace, solve
from andersonn.solvers import anderson as anderson_mod

from test_solvers import nan_on_call


def _problem(batch=12, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64) / n**0.5
    s = torch.linspace(0.3, 0.9, batch, dtype=torch.float64)[:, None]  # mixed difficulty: rows retire apart
    b = torch.randn(batch, n, generator=g, dtype=torch.float64)

    def f(z, s_, b_):
        return s_ * torch.tanh(z @ A.T) + b_

    return f, (s, b), torch.zeros(batch, n, dtype=torch.float64)


def _same(r, ref):
    assert torch.equal(r.z, ref.z)
    assert torch.equal(r.nfe, ref.nfe)
    assert torch.equal(r.sample_status, ref.sample_status)
    assert torch.equal(r.trace.nan_to_num(-1.0), ref.trace.nan_to_num(-1.0))


def _poison(ws: Workspace) -> None:
    """What an earlier solve may leave behind, at its worst."""
    for t in ws._buffers.values():
        t.fill_(float("nan"))


def test_reused_buffers_give_the_fresh_answer_and_are_really_reused():
    f, args, z0 = _problem()
    ref = solve(f, z0, args=args, tol=1e-10, max_iter=200, m=4)
    ws = Workspace()
    first = solve(f, z0, args=args, tol=1e-10, max_iter=200, m=4, workspace=ws)
    ptrs = {k: t.data_ptr() for k, t in ws._buffers.items()}
    assert ws.nbytes == 2 * 12 * 4 * 40 * 8  # F and G: (batch, m, n) float64
    for _ in range(2):
        r = solve(f, z0, args=args, tol=1e-10, max_iter=200, m=4, workspace=ws)
        _same(r, ref)
    _same(first, ref)
    assert int(ref.nfe.min()) < int(ref.nfe.max())  # rows retired apart: the buffers were compacted
    assert {k: t.data_ptr() for k, t in ws._buffers.items()} == ptrs


@pytest.mark.parametrize("uniform", [True, False])
def test_stale_nan_in_reused_buffers_never_reaches_the_masked_path(uniform, monkeypatch):
    # A non-finite evaluation at the 2nd call (window not yet full) switches to the masked
    # path, which reads every history column: columns this solve never wrote must act as zeros.
    monkeypatch.setattr(anderson_mod.Anderson, "uniform_fast_path", uniform)
    f, args, z0 = _problem()

    def run(ws):
        flaky = nan_on_call(lambda z: f(z, *args), call=2, row=3, col=5)
        return solve(flaky, z0, tol=1e-10, max_iter=200, m=5, workspace=ws)

    ref = run(None)
    assert int(ref.restarts[3]) == 1
    ws = Workspace()
    run(ws)
    _poison(ws)
    _same(run(ws), ref)


def test_stale_nan_survives_no_failed_uniform_step():
    # max_coeff just above 1 rejects any extrapolation with a negative weight: the uniform step fails
    # early (window not full) and restarts those samples on the masked path.
    f, args, z0 = _problem(seed=1)
    ref = solve(f, z0, args=args, tol=1e-10, max_iter=300, m=5, max_coeff=1.0001)
    assert int(ref.restarts.sum()) > 0
    ws = Workspace()
    solve(f, z0, args=args, tol=1e-10, max_iter=300, m=5, max_coeff=1.0001, workspace=ws)
    _poison(ws)
    _same(solve(f, z0, args=args, tol=1e-10, max_iter=300, m=5, max_coeff=1.0001, workspace=ws), ref)


def test_new_shapes_replace_the_buffers():
    ws = Workspace()
    f, args, z0 = _problem(batch=12)
    solve(f, z0, args=args, m=4, workspace=ws)
    f2, args2, z02 = _problem(batch=5, n=7)
    r = solve(f2, z02, args=args2, tol=1e-10, m=4, workspace=ws)
    _same(r, solve(f2, z02, args=args2, tol=1e-10, m=4))
    assert ws.nbytes == 2 * 5 * 4 * 7 * 8
    ws.clear()
    assert ws.nbytes == 0


def test_a_nested_solve_on_the_same_workspace_is_refused_and_the_workspace_freed():
    ws = Workspace()
    inner_error = []

    def f(z):
        try:
            solve(lambda y: 0.5 * y, torch.ones(2, 3), workspace=ws)
        except SolverInputError as e:
            inner_error.append(str(e))
            raise
        return 0.5 * z

    with pytest.raises(SolverInputError, match="already in use"):
        solve(f, torch.zeros(2, 3), workspace=ws)
    assert inner_error
    r = solve(lambda y: 0.5 * y + 1.0, torch.zeros(2, 3), workspace=ws, tol=1e-8)  # released after the error
    assert r.status.name == "SUCCESS"


def test_deq_with_and_without_buffer_reuse_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 6).double()

    def block(z, x):
        return torch.tanh(0.6 * lin(z) + x)

    x = torch.randn(9, 6, dtype=torch.float64)
    outs = {}
    for reuse in (False, True):
        deq = DEQ(block, m=3, tol=1e-9, backward_tol=1e-9, max_iter=100, backward_max_iter=100,
                  reuse_buffers=reuse)
        for _ in range(2):  # the second call reuses what the first left
            lin.zero_grad()
            z = deq(x)
            (z ** 2).sum().backward()
        outs[reuse] = (z.detach(), lin.weight.grad.clone())
        assert (deq.workspace is not None) == reuse
    assert torch.equal(outs[True][0], outs[False][0])
    assert torch.equal(outs[True][1], outs[False][1])
    clone = copy.deepcopy(deq)
    assert clone.workspace is not deq.workspace and clone.workspace.nbytes == 0


def test_workspace_is_exported():
    assert andersonn.Workspace is Workspace
