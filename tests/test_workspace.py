"""Reused solver buffers (Workspace) must give exactly the answers of fresh ones."""

import copy

import pytest
import torch

import andersonn
from andersonn import DEQ, Workspace, solve

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
def test_stale_nan_in_reused_buffers_never_reaches_the_masked_path(uniform):
    # A non-finite evaluation at the 2nd call (window not yet full) switches to the masked
    # path, which reads every history column: columns this solve never wrote must act as zeros.
    f, args, z0 = _problem()

    def run(ws):
        flaky = nan_on_call(lambda z: f(z, *args), call=2, row=3, col=5)
        return solve(flaky, z0, tol=1e-10, max_iter=200, m=5, workspace=ws, cpu_shortcuts=uniform)

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


def test_a_solve_that_finds_the_workspace_in_use_allocates_its_own():
    ws = Workspace()
    inner = []

    def f(z):  # a nested solve on the same workspace, while the outer one holds it
        inner.append(solve(lambda y: 0.5 * y + 1.0, torch.zeros(2, 3), workspace=ws, tol=1e-10))
        return 0.5 * z + 2.0

    r = solve(f, torch.zeros(2, 3), workspace=ws, tol=1e-10)
    assert r.status.name == "SUCCESS" and torch.allclose(r.z, torch.full((2, 3), 4.0))
    assert inner and all(torch.allclose(q.z, torch.full((2, 3), 2.0)) for q in inner)
    assert ws.acquire()  # released after the solve
    ws.release()


def test_an_error_inside_f_releases_the_workspace():
    ws = Workspace()

    def f(z):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        solve(f, torch.zeros(2, 3), workspace=ws)
    assert ws.acquire()
    ws.release()


def test_threads_sharing_one_deq_all_get_the_right_answer():
    import threading

    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 16).double()
    deq = DEQ(lambda z, x: torch.tanh(0.6 * lin(z) + x), m=3, tol=1e-10, max_iter=200)
    xs = [torch.randn(32, 16, dtype=torch.float64) for _ in range(6)]
    with torch.no_grad():
        ref = [DEQ(deq.f, m=3, tol=1e-10, max_iter=200, reuse_buffers=False)(x) for x in xs]
    out: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            with torch.no_grad():
                for _ in range(3):
                    out[i] = deq(xs[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, r in enumerate(ref):
        # Shared buffers give errors of ~0.3 (a mutant sharing them was checked); concurrent BLAS
        # calls may round differently, and a last-digit change can move a stop by one iteration.
        assert torch.allclose(out[i], r, rtol=0, atol=1e-7), (i, float((out[i] - r).abs().max()))


def test_buffers_made_under_inference_mode_do_not_break_training():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 6)
    deq = DEQ(lambda z, x: torch.tanh(0.5 * lin(z) + x), m=3)
    x = torch.randn(4, 6)
    with torch.inference_mode():
        deq(x)
    deq(x).sum().backward()  # writes into the buffers outside inference mode
    assert lin.weight.grad is not None and deq.last_backward is not None


def test_deq_with_and_without_buffer_reuse_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 6).double()

    def block(z, x):
        return torch.tanh(0.6 * lin(z) + x)

    x = torch.randn(9, 6, dtype=torch.float64)
    outs = {}
    for reuse in (False, True):
        # Same m forward and backward: the adjoint solve reuses the forward solve's buffers.
        deq = DEQ(block, m=3, tol=1e-9, backward_tol=1e-9, max_iter=100, backward_max_iter=100,
                  backward_options={"m": 3}, reuse_buffers=reuse)
        ptrs = []
        for _ in range(2):  # the second call reuses what the first left
            lin.zero_grad()
            z = deq(x)
            (z ** 2).sum().backward()
            if reuse:
                ptrs.append(sorted(t.data_ptr() for t in deq.workspace._buffers.values()))
        if reuse:
            assert len(ptrs[0]) == 2 and ptrs[0] == ptrs[1]  # one F and one G, kept across calls
        outs[reuse] = (z.detach(), lin.weight.grad.clone())
        assert (deq.workspace is not None) == reuse
    assert torch.equal(outs[True][0], outs[False][0])
    assert torch.equal(outs[True][1], outs[False][1])
    clone = copy.deepcopy(deq)
    assert clone.workspace is not deq.workspace and clone.workspace.nbytes == 0


def test_workspace_is_exported():
    assert andersonn.Workspace is Workspace


@pytest.mark.parametrize("case", ["plain", "nan_early", "failed_uniform_step"])
def test_fresh_history_left_uninitialised_on_the_cpu_gives_the_zeroed_answer(monkeypatch, case):
    # Without a workspace the CPU's uniform window starts from uninitialised buffers (no zero fill).
    # Made to hold NaN at their worst, they must give exactly the answer of zeroed buffers.
    f, args, z0 = _problem(seed=1)
    kwargs = dict(tol=1e-10, max_iter=300, m=5)
    if case == "failed_uniform_step":
        kwargs["max_coeff"] = 1.0001

    def run(ws):
        if case != "nan_early":
            return solve(f, z0, args=args, workspace=ws, **kwargs)
        flaky = nan_on_call(lambda z: f(z, *args), call=2, row=3, col=5)
        return solve(flaky, z0, workspace=ws, **kwargs)

    ref = run(Workspace())  # a new workspace hands out zeroed buffers
    made = []
    real_new_empty = torch.Tensor.new_empty

    def poisoned_new_empty(self, *size, **kw):
        t = real_new_empty(self, *size, **kw)
        if t.is_floating_point():
            t.fill_(float("nan"))
            made.append(t.shape)
        return t

    monkeypatch.setattr(torch.Tensor, "new_empty", poisoned_new_empty)
    _same(run(None), ref)
    assert (12, 5, 40) in made  # the history really came uninitialised
    if case != "plain":
        assert int(ref.restarts.sum()) > 0
