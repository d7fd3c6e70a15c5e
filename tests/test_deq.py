"""DEQ layer: implicit-function-theorem gradients, statistics, validation; the poster's model."""

import pytest
import torch

from andersonn import DEQ, SolverInputError
from andersonn.models import ImplicitConvBlock, count_parameters, deq_classifier


def _rel_err(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _unrolled(f, x, iters):
    z = torch.zeros_like(x)
    for _ in range(iters):
        z = f(z, x)
    return z


@pytest.mark.parametrize("solver", ["anderson", "forward", "broyden"])
def test_ift_gradients_match_autograd_through_unrolled_solve(solver):
    torch.manual_seed(0)
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4, init_std=0.05).double()
    x = torch.randn(3, 8, 5, 5, dtype=torch.float64)
    w = torch.randn(3, 8, 5, 5, dtype=torch.float64)

    # Reference: autograd through an unrolled solve run to machine-precision convergence.
    x_ref = x.clone().requires_grad_()
    z_ref = _unrolled(f, x_ref, 400)
    res = (f(z_ref, x_ref) - z_ref).norm() / z_ref.norm()
    assert res < 1e-13, "reference unroll did not converge"
    (z_ref * w).sum().backward()
    ref = {n: p.grad.clone() for n, p in f.named_parameters()}
    ref_x = x_ref.grad.clone()
    f.zero_grad()

    deq = DEQ(f, solver=solver, tol=1e-13, max_iter=400, backward_tol=1e-13, backward_max_iter=400)
    x_ift = x.clone().requires_grad_()
    z = deq(x_ift)
    (z * w).sum().backward()
    assert deq.last_forward.success and deq.last_backward.success
    for n, p in f.named_parameters():
        assert _rel_err(p.grad, ref[n]) <= 1e-6, n
    assert _rel_err(x_ift.grad, ref_x) <= 1e-6
    assert _rel_err(z.detach(), z_ref.detach()) <= 1e-10


def test_compacted_adjoint_solve_gives_the_full_batch_gradients():
    """Samples whose adjoint converges early (here: zero upstream gradient) leave the adjoint
    solve, which then re-applies f to the rest; the gradients must not change."""
    torch.manual_seed(1)
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4, init_std=0.05).double()
    x = torch.randn(6, 8, 5, 5, dtype=torch.float64)
    w = torch.randn(6, 8, 5, 5, dtype=torch.float64)
    w[::2] = 0.0  # half the batch has nothing to propagate
    w[1] *= 100.0  # and the rest differ in scale
    grads = {}
    for compact in (False, True):
        f.zero_grad()
        deq = DEQ(f, tol=1e-12, max_iter=300, backward_tol=1e-12, backward_max_iter=300, backward_compact=compact)
        xi = x.clone().requires_grad_()
        (deq(xi) * w).sum().backward()
        back = deq.last_backward
        assert back.success
        grads[compact] = ({n: p.grad.clone() for n, p in f.named_parameters()}, xi.grad.clone(), back)
    (p_full, x_full, b_full), (p_cmp, x_cmp, b_cmp) = grads[False], grads[True]
    for n in p_full:
        assert _rel_err(p_cmp[n], p_full[n]) <= 1e-9, n
    assert _rel_err(x_cmp, x_full) <= 1e-9
    # the full-batch closure evaluates every row every iteration; the compacted one does not
    assert b_full.sample_evals == b_full.iterations * 6
    assert b_cmp.sample_evals <= b_cmp.iterations * 3 + 6
    assert bool((b_cmp.nfe[::2] == 1).all())


def test_jacobian_free_backward_runs_without_adjoint_solve():
    torch.manual_seed(0)
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4)
    deq = DEQ(f, backward="jfb")
    deq(torch.randn(2, 8, 4, 4)).sum().backward()
    assert deq.last_backward is None
    assert all(p.grad is not None for p in f.parameters())


def test_statistics_of_last_solves_are_readable():
    torch.manual_seed(0)
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4)
    deq = DEQ(f, solver="anderson", m=3, tol=1e-5)
    deq(torch.randn(2, 8, 4, 4)).square().sum().backward()
    stats = deq.stats()
    assert stats["forward_nfe"] > 0 and stats["backward_nfe"] > 0
    assert stats["forward_residual"] < 1e-5 and stats["backward_residual"] < 1e-4
    with torch.no_grad():
        deq(torch.randn(2, 8, 4, 4))
    assert deq.last_forward.nfe.shape == (2,)


def test_deq_rejects_nan_input_and_bad_options():
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4)
    x = torch.randn(2, 8, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(SolverInputError, match="NaN"):
        DEQ(f)(x)
    with pytest.raises(SolverInputError, match="unknown option"):
        DEQ(f, solver="anderson", window=5)
    with pytest.raises(SolverInputError, match="backward"):
        DEQ(f, backward="unrolled")
    with pytest.raises(SolverInputError, match="m must be"):
        DEQ(f, m=0)


def test_poster_classifier_has_64842_parameters_and_runs():
    model = deq_classifier()
    assert count_parameters(model) == 64_842
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    with pytest.raises(ValueError, match="expected images of shape"):
        model(torch.randn(2, 1, 32, 32))


def test_channel_sum_readout_adds_the_image_sums_to_the_logits():
    """The readout's parameters are counted as documented, and it moves the logits of two images that
    differ only in one channel's total, which the poster's model (pooled GroupNorm features) sees at a
    different scale only."""
    from andersonn.models import ChannelSumReadout, count_parameters, deq_classifier

    plain = deq_classifier(in_channels=5, image_size=8, num_classes=3, channels=8, inner_channels=8, groups=2, pool=4)
    wide = deq_classifier(in_channels=5, image_size=8, num_classes=3, channels=8, inner_channels=8, groups=2, pool=4,
                          channel_sums=True)
    assert count_parameters(wide) - count_parameters(plain) == 5 * (3 + 2) + 3
    readout = ChannelSumReadout(5, 3).eval()
    with torch.no_grad():
        readout.norm.running_var.fill_(1.0)
        readout.linear.weight.zero_()
        readout.linear.weight[1, 2] = 1.0
        x = torch.zeros(2, 5, 8, 8)
        x[0, 2, 0, 0], x[1, 2, 0, 0] = 1.0, 100.0  # channel 2 sums to 1 and to 100
        out = readout(x) - readout.linear.bias
    torch.testing.assert_close(out[:, 1], torch.log1p(torch.tensor([1.0, 100.0])) / (1 + 1e-5) ** 0.5)
    assert torch.all(out[:, [0, 2]] == 0)


def test_classifier_widths_are_arguments():
    model = deq_classifier(in_channels=1, image_size=16, num_classes=2, channels=16, inner_channels=32, pool=4)
    assert model(torch.randn(3, 1, 16, 16)).shape == (3, 2)


def test_jacobian_estimate_is_the_frobenius_norm_per_element():
    """For f(z, x) = c z + x the Jacobian is c I, so ||J||_F^2 / dim = c^2; one Hutchinson probe over
    20,000 elements lands within a few per cent, and it is differentiable in the parameters."""
    c = torch.nn.Parameter(torch.tensor(0.5))
    deq = DEQ(lambda z, x: c * z + x, solver="anderson", m=3, tol=1e-6, jacobian_penalty=True)
    torch.manual_seed(0)
    deq(torch.randn(20, 1000))
    est = deq.last_jacobian
    assert abs(est.item() - 0.25) < 0.02
    est.backward()
    assert abs(float(c.grad) - 1.0) < 0.05          # d(c^2)/dc = 2c = 1
    with torch.no_grad():
        deq(torch.randn(2, 10))
    assert deq.last_jacobian is None                # no estimate outside training


def _small_deq(**kw):
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 6, dtype=torch.float64)
    return DEQ(lambda z, x: torch.tanh(0.5 * lin(z) + x), **kw)


def test_z0_near_the_fixed_point_converges_in_fewer_iterations():
    deq = _small_deq(solver="anderson", m=3, tol=1e-8, max_iter=100)
    x = torch.randn(4, 6, dtype=torch.float64)
    with torch.no_grad():
        z_star = deq(x)
        cold = deq.last_forward
        warm_z = deq(x, z_star + 1e-6 * torch.randn_like(z_star))
        warm = deq.last_forward
    assert cold.success and warm.success
    assert warm.mean_nfe < cold.mean_nfe, (warm.mean_nfe, cold.mean_nfe)
    assert torch.allclose(warm_z, z_star, atol=1e-6)


def test_z0_of_the_wrong_batch_size_is_refused():
    deq = _small_deq()
    x = torch.randn(4, 6, dtype=torch.float64)
    with pytest.raises(SolverInputError, match="z0 batch 3 differs from x batch 4"):
        deq(x, torch.zeros(3, 6, dtype=torch.float64))


@pytest.mark.parametrize("solver", ["anderson", "forward"])
def test_the_adjoint_follows_the_forward_tolerance_solver_and_options_unless_told(solver):
    """DEQ(f, tol=1e-12) gives gradients to that tolerance, not to a backward_tol left at 1e-4; the
    adjoint uses the forward solver and its options unless given its own."""
    torch.manual_seed(1)
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4, init_std=0.05).double()
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    w = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    x_ref = x.clone().requires_grad_()
    (_unrolled(f, x_ref, 400) * w).sum().backward()
    ref = {n: p.grad.clone() for n, p in f.named_parameters()}
    f.zero_grad()
    options = {"m": 3} if solver == "anderson" else {}
    deq = DEQ(f, solver=solver, tol=1e-12, max_iter=400, **options)
    assert (deq.backward_solver, deq.backward_tol, deq.backward_max_iter, deq.backward_options) == (solver, 1e-12, 400, options)
    (deq(x) * w).sum().backward()
    assert deq.last_backward.method == solver and deq.last_backward.options.get("m") == options.get("m")
    for n, p in f.named_parameters():
        assert _rel_err(p.grad, ref[n]) <= 1e-9, n
    # told otherwise, it does as told
    other = DEQ(f, solver=solver, tol=1e-12, backward_solver="anderson", backward_tol=1e-3, backward_max_iter=7,
                backward_options={"m": 2})
    assert (other.backward_solver, other.backward_tol, other.backward_max_iter, other.backward_options) == ("anderson", 1e-3, 7, {"m": 2})
    # a different adjoint solver does not inherit the forward solver's options
    assert DEQ(f, solver="anderson", m=3, backward_solver="forward").backward_options == {}


def test_the_deq_takes_every_stopping_option_solve_takes_and_checks_them_at_construction():
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4)
    deq = DEQ(f, stop_mode="abs", divergence_factor=None, check_every=2, max_restarts=1, compact_fraction=0.0, tol=1e-3)
    deq(torch.randn(2, 8, 4, 4))
    assert deq.last_forward.residual_kind == "absolute"
    for bad, match in (({"stop_mode": "relative"}, "stop_mode"), ({"check_every": 0}, "check_every"),
                       ({"divergence_factor": 0.5}, "divergence_factor"), ({"max_restarts": -1}, "max_restarts"),
                       ({"tol": float("nan")}, "tol"), ({"backward_tol": -1.0}, "tol"), ({"backward_max_iter": 0}, "max_iter")):
        with pytest.raises(SolverInputError, match=match):
            DEQ(f, **bad)


def test_spectral_radius_at_the_fixed_point_matches_the_eigenvalues_of_the_full_jacobian():
    """Power iteration on VJPs against torch.func.jacrev + eigvals, per sample, on the poster's block."""
    from andersonn import spectral_radius

    torch.manual_seed(2)
    f = ImplicitConvBlock(channels=4, inner_channels=4, groups=2, init_std=0.3).double()
    x = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    deq = DEQ(f, tol=1e-12, max_iter=300)
    rho = deq.spectral_radius(x, iters=200)
    z = deq.last_forward.z
    for b in range(3):
        jac = torch.func.jacrev(lambda zb: f(zb[None], x[b: b + 1])[0])(z[b]).reshape(36, 36)
        exact = float(torch.linalg.eigvals(jac.detach()).abs().max())
        assert float(rho[b]) == pytest.approx(exact, rel=2e-3), b
    assert deq.stats()["spectral_radius_max"] == pytest.approx(float(rho.max()))
    with pytest.raises(ValueError, match="iters"):
        spectral_radius(f, z, (x,), iters=1)


def _grads(deq, f, x, w):
    for p in f.parameters():
        p.grad = None
    xg = x.clone().requires_grad_()
    (deq(xg) * w).sum().backward()
    return torch.cat([p.grad.flatten() for p in f.parameters()] + [xg.grad.flatten()])


def test_phantom_gradient_tends_to_the_ift_gradient_as_the_steps_grow_and_is_jfb_at_one_step():
    torch.manual_seed(0)
    f = ImplicitConvBlock(channels=8, inner_channels=8, groups=4, init_std=0.05).double()
    x = torch.randn(3, 8, 5, 5, dtype=torch.float64)
    w = torch.randn(3, 8, 5, 5, dtype=torch.float64)
    stop = dict(tol=1e-12, max_iter=300)
    ift = _grads(DEQ(f, solver="anderson", **stop), f, x, w)
    errors = [_rel_err(_grads(DEQ(f, backward="phantom", phantom_steps=k, **stop), f, x, w), ift)
              for k in (1, 5, 20, 300)]
    assert errors[0] > errors[1] > errors[2] > errors[3] and errors[3] < 1e-8, errors
    assert errors[0] > 1e-3  # one damped step is a different (cruder) gradient
    jfb = _grads(DEQ(f, backward="jfb", **stop), f, x, w)
    one = _grads(DEQ(f, backward="phantom", phantom_steps=1, phantom_damping=1.0, **stop), f, x, w)
    torch.testing.assert_close(one, jfb, rtol=1e-12, atol=1e-14)
    deq = DEQ(f, backward="phantom", **stop)
    deq(x)
    assert deq.last_backward is None  # no adjoint solve


@pytest.mark.parametrize("kw, message", [
    (dict(phantom_steps=0), "phantom_steps must be an integer >= 1"),
    (dict(phantom_steps=2.5), "phantom_steps must be an integer >= 1"),
    (dict(phantom_damping=0.0), r"phantom_damping must be in \(0, 1\]"),
    (dict(phantom_damping=1.5), r"phantom_damping must be in \(0, 1\]"),
    (dict(backward="unrolled"), "backward must be one of"),
])
def test_phantom_options_are_checked_at_construction(kw, message):
    with pytest.raises(SolverInputError, match=message):
        DEQ(lambda z, x: 0.5 * z + x, **({"backward": "phantom"} | kw))
