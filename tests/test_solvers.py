"""Fixed-point solver core: correctness, per-sample stopping, safeguards, validation."""

import math

import pytest
import torch

import andersonn
from andersonn.solvers import FixedPointMethod, SolverInputError, SolverStatus, register_solver, solve


def linear_problem(n=40, batch=3, rho=0.95, seed=0):
    """z = A z + b with A symmetric of known spectrum in [-rho, rho]; returns (f, z*)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eig = torch.linspace(-rho, rho, n, dtype=torch.float64)
    A = q @ torch.diag(eig) @ q.T
    b = torch.randn(batch, n, generator=g, dtype=torch.float64)
    z_star = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - A, b.T).T
    return (lambda z: z @ A.T + b), z_star


def nan_on_call(f, call, row, col):
    """f, except that its ``call``-th evaluation returns NaN at ``[row, col]``."""
    calls = {"n": 0}

    def flaky(z):
        calls["n"] += 1
        out = f(z)
        if calls["n"] == call:
            out = out.clone()
            out[row, col] = float("nan")
        return out

    return flaky


@pytest.mark.parametrize("method", ["forward", "anderson", "broyden"])
def test_linear_map_reaches_tolerance_and_solution(method):
    f, z_star = linear_problem()
    r = solve(f, torch.zeros_like(z_star), method=method, tol=1e-8, max_iter=1000)
    assert r.status == SolverStatus.SUCCESS, r.message
    assert bool(r.converged.all()) and bool((r.residual < 1e-8).all())
    assert r.residual_kind == "relative"
    assert torch.allclose(r.z, z_star, rtol=1e-6, atol=1e-6)
    # The reported residual is the residual of the returned iterate.
    fz = f(r.z)
    recomputed = (fz - r.z).norm(dim=1) / fz.norm(dim=1)
    assert torch.allclose(recomputed, r.residual, rtol=1e-6, atol=1e-14)


# not broyden: its secant step solves this map exactly at the second step, so the two modes cannot differ
@pytest.mark.parametrize("method", ["forward", "anderson"])
def test_stop_mode_abs_stops_on_the_absolute_residual(method):
    # z* = 1000: a relative residual of 1e-6 is an absolute one of ~1e-3, so the two modes differ.
    f = lambda z: 0.5 * z + 500.0  # noqa: E731
    z0 = torch.zeros(2, 3, dtype=torch.float64)
    rel = solve(f, z0, method=method, tol=1e-6, max_iter=500)
    ab = solve(f, z0, method=method, tol=1e-6, max_iter=500, stop_mode="abs")
    assert rel.success and ab.success, (rel.message, ab.message)
    assert ab.residual_kind == "absolute" and rel.residual_kind == "relative"
    recomputed = (f(ab.z) - ab.z).norm(dim=1)
    assert torch.allclose(recomputed, ab.residual, rtol=1e-6, atol=1e-14)
    assert bool((ab.residual < 1e-6).all())
    assert bool(((f(rel.z) - rel.z).norm(dim=1) > 1e-6).any())  # rel stopped before abs would
    assert ab.iterations > rel.iterations
    assert torch.allclose(ab.trace[-1], ab.residual)  # the trace is in the same (absolute) units


def test_rel_residual_is_a_deprecated_alias_of_residual():
    r = solve(lambda z: 0.5 * z + 1.0, torch.zeros(2, 3), tol=1e-6, stop_mode="abs")
    with pytest.warns(DeprecationWarning, match="residual"):
        alias = r.rel_residual
    assert alias is r.residual


def test_anderson_needs_far_fewer_evaluations_than_forward():
    f, z_star = linear_problem(rho=0.99)
    fwd = solve(f, torch.zeros_like(z_star), method="forward", tol=1e-8, max_iter=5000)
    aa = solve(f, torch.zeros_like(z_star), method="anderson", m=5, tol=1e-8, max_iter=5000)
    assert aa.success and fwd.success
    assert aa.mean_nfe * 4 < fwd.mean_nfe, (aa.mean_nfe, fwd.mean_nfe)


@pytest.mark.parametrize("method", ["forward", "anderson", "broyden"])
def test_mixed_batch_easy_samples_stop_early(method):
    # Per-sample scalar-field maps z = a z + 1: a=0.1 is easy, a=0.97 is hard.
    a = torch.tensor([0.1, 0.97, 0.1, 0.1, 0.97, 0.1], dtype=torch.float64)[:, None].expand(6, 16)
    a = a * torch.linspace(0.5, 1.0, 16, dtype=torch.float64)  # not a scalar problem per sample
    calls = []

    def f(z, coeff):
        calls.append(z.shape[0])
        return coeff * z + 1.0

    r = solve(f, torch.zeros(6, 16, dtype=torch.float64), method=method, args=(a,), tol=1e-10, max_iter=2000)
    assert r.success, r.message
    easy, hard = r.nfe[[0, 2, 3, 5]], r.nfe[[1, 4]]
    assert int(easy.max()) < int(hard.min())
    # Easy samples were compacted out: f saw fewer rows once they were done.
    assert r.sample_evals == sum(calls) == int(r.nfe.sum())
    assert r.sample_evals < 0.6 * r.iterations * 6
    assert min(calls) == 2
    # Per-sample trace: NaN once a sample has stopped.
    assert r.trace.shape == (r.iterations, 6)
    assert math.isnan(float(r.trace[-1, 0])) and not math.isnan(float(r.trace[-1, 1]))


def test_closure_without_args_freezes_done_samples_with_same_answer():
    a = torch.tensor([0.1, 0.9, 0.2], dtype=torch.float64)[:, None] * torch.ones(3, 5, dtype=torch.float64)
    with_args = solve(lambda z, c: c * z + 1, torch.zeros(3, 5, dtype=torch.float64), args=(a,), tol=1e-10, max_iter=500)
    closure = solve(lambda z: a * z + 1, torch.zeros(3, 5, dtype=torch.float64), tol=1e-10, max_iter=500)
    assert closure.success and with_args.success
    assert torch.allclose(closure.z, with_args.z)
    assert torch.equal(closure.nfe, with_args.nfe)


def test_check_every_batches_host_syncs_without_changing_answer():
    f, z_star = linear_problem(batch=4)
    r = solve(f, torch.zeros_like(z_star), tol=1e-8, max_iter=500, check_every=5)
    assert r.success and torch.allclose(r.z, z_star, atol=1e-6)
    assert int(r.nfe.min()) % 5 == 0  # samples retire only at check points


def test_any_per_sample_shape_is_supported():
    x = torch.randn(3, 2, 4, 5)
    r = solve(lambda z, x: 0.5 * torch.tanh(z) + x, torch.zeros_like(x), args=(x,), tol=1e-6)
    assert r.success and r.z.shape == x.shape


def test_nonfinite_evaluation_restarts_from_best_iterate():
    f, z_star = linear_problem(batch=2)
    r = solve(nan_on_call(f, call=4, row=0, col=3), torch.zeros_like(z_star), tol=1e-8, max_iter=500)
    assert r.success, r.message
    assert int(r.restarts[0]) >= 1 and int(r.restarts[1]) == 0
    assert torch.isfinite(r.z).all() and torch.allclose(r.z, z_star, atol=1e-6)


def test_broyden_on_a_linear_map_needs_about_2n_evaluations_where_forward_needs_thousands():
    """Good Broyden with memory for every update terminates in at most 2n steps on a linear map in
    exact arithmetic (Gay 1979); forward iteration with spectral radius 0.99 needs ~1,800."""
    f, z_star = linear_problem(n=20, rho=0.99)
    fwd = solve(f, torch.zeros_like(z_star), method="forward", tol=1e-10, max_iter=5000)
    br = solve(f, torch.zeros_like(z_star), method="broyden", memory=60, tol=1e-10, max_iter=5000)
    assert br.success and fwd.success, (br.message, fwd.message)
    assert int(br.nfe.max()) <= 2 * 20 + 10 < int(fwd.nfe.min()) // 20, (br.nfe, fwd.nfe)
    assert torch.allclose(br.z, z_star, atol=1e-7)
    assert br.restart_counts == {"small_denominator": 0, "other": 0, "nonfinite_evaluation": 0}


def test_broyden_skipped_updates_restart_and_are_counted_by_cause():
    """An update whose secant denominator is too small is skipped: the sample restarts from H = -I
    (a forward step), which still converges on a contractive map."""
    f, z_star = linear_problem(batch=2, rho=0.6)
    r = solve(f, torch.zeros_like(z_star), method="broyden", min_denominator=0.999, tol=1e-8, max_iter=500)
    assert r.success, r.message
    assert int(r.restarts_by_cause["small_denominator"].min()) > 0
    assert torch.equal(sum(r.restarts_by_cause.values()), r.restarts)
    assert torch.allclose(r.z, z_star, atol=1e-6)


def test_broyden_forgets_the_history_of_a_sample_whose_evaluation_was_not_finite():
    f, z_star = linear_problem(batch=2)
    r = solve(nan_on_call(f, call=4, row=0, col=3), torch.zeros_like(z_star), method="broyden", memory=80,
              tol=1e-8, max_iter=500)
    assert r.success, r.message
    assert r.restarts_by_cause["nonfinite_evaluation"].tolist() == [1, 0]
    assert int(r.restarts_by_cause["small_denominator"][0]) == 0  # the rejected point makes no secant pair
    assert torch.isfinite(r.z).all() and torch.allclose(r.z, z_star, atol=1e-6)


@pytest.mark.parametrize("kwargs,pattern", [({"memory": 0}, "memory"), ({"memory": 2.5}, "memory"),
                                            ({"min_denominator": 1.0}, "min_denominator")])
def test_broyden_bad_options_are_refused_by_name(kwargs, pattern):
    with pytest.raises(SolverInputError, match=pattern):
        solve(lambda z: 0.5 * z, torch.zeros(1, 2), method="broyden", **kwargs)


def nan_on_calls(f, calls, row):
    """f, except that its evaluations numbered in ``calls`` return NaN in row ``row``."""
    n = {"n": 0}

    def flaky(z):
        n["n"] += 1
        out = f(z)
        if n["n"] in calls:
            out = out.clone()
            out[row] = float("nan")
        return out

    return flaky


ANDERSON_CAUSES = ("singular_system", "nonfinite_coefficients", "large_coefficients")


def assert_causes_add_up(r):
    total = sum(r.restarts_by_cause.values())
    assert torch.equal(total, r.restarts), (r.restarts_by_cause, r.restarts)
    assert set(r.restart_counts) == set(r.restarts_by_cause)


def test_restarts_are_counted_by_cause_nonfinite_evaluation():
    f, z_star = linear_problem(batch=2)
    r = solve(nan_on_calls(f, {4, 9}, row=0), torch.zeros_like(z_star), tol=1e-8, max_iter=500)
    assert r.success, r.message
    assert set(ANDERSON_CAUSES) | {"nonfinite_evaluation", "other"} == set(r.restarts_by_cause)
    assert r.restarts_by_cause["nonfinite_evaluation"].tolist() == [2, 0]
    assert r.restart_counts["nonfinite_evaluation"] == 2
    assert_causes_add_up(r)


def test_restarts_are_counted_by_cause_large_coefficients():
    # sum |alpha| <= 1 only for convex combinations: max_coeff just above 1 refuses extrapolation.
    f, z_star = linear_problem(batch=2, rho=0.9)
    r = solve(f, torch.zeros_like(z_star), tol=1e-8, max_iter=2000, max_coeff=1.01)
    assert r.success, r.message
    assert r.restart_counts["large_coefficients"] > 0
    assert r.restart_counts["nonfinite_evaluation"] == 0 and r.restart_counts["other"] == 0
    assert_causes_add_up(r)


def test_restarts_are_counted_by_cause_singular_system_and_plain_methods():
    # f(z) = z + 1 has the same residual every step: the Gram matrix is exactly all-ones and, with lam = 0,
    # the bordered system exactly singular (a 1-D problem such as cos is only singular up to rounding,
    # which some LAPACK builds solve without complaint).
    r = solve(lambda z: z + 1.0, torch.zeros(3, 2, dtype=torch.float64), method="anderson", m=3, lam=0.0,
              lam_mode="absolute", tol=1e-12, max_iter=12)
    assert r.restart_counts["singular_system"] + r.restart_counts["nonfinite_coefficients"] > 0
    assert_causes_add_up(r)
    r = solve(torch.cos, torch.zeros(3, 1, dtype=torch.float64), method="anderson", m=5, lam=0.0,
              lam_mode="absolute", tol=1e-12, max_iter=200)
    assert r.success, r.message  # rank-deficient but solvable: safeguarded or not, it converges
    assert_causes_add_up(r)
    fwd = solve(lambda z: 0.5 * z + 1.0, torch.zeros(2, 3), method="forward", tol=1e-6)
    assert set(fwd.restarts_by_cause) == {"other", "nonfinite_evaluation"}
    assert fwd.restart_counts == {"other": 0, "nonfinite_evaluation": 0}


@pytest.mark.parametrize("max_restarts", [0, 2, 5])
def test_max_restarts_bounds_the_nonfinite_evaluations_tolerated(max_restarts):
    # Row 0 of evaluations 3, 5, 7 (three non-finite evaluations) is NaN.
    f, z_star = linear_problem(batch=2)
    r = solve(nan_on_calls(f, {3, 5, 7}, row=0), torch.zeros_like(z_star), tol=1e-8, max_iter=500,
              max_restarts=max_restarts)
    assert int(r.sample_status[1]) == SolverStatus.SUCCESS
    if max_restarts >= 3:
        assert int(r.sample_status[0]) == SolverStatus.SUCCESS, r.message
        assert int(r.restarts_by_cause["nonfinite_evaluation"][0]) == 3
    else:  # the (max_restarts + 1)-th non-finite evaluation stops it
        assert int(r.sample_status[0]) == SolverStatus.NONFINITE, r.message
        assert int(r.restarts_by_cause["nonfinite_evaluation"][0]) == max_restarts + 1
        assert int(r.nfe[0]) == 3 + 2 * max_restarts
    assert torch.isfinite(r.z).all()
    assert_causes_add_up(r)


def test_singular_bordered_system_falls_back_and_still_converges():
    # One unknown per sample and lam=0: G^T G has rank 1, the bordered system becomes singular.
    r = solve(torch.cos, torch.zeros(3, 1, dtype=torch.float64), method="anderson", m=5, lam=0.0,
              lam_mode="absolute", tol=1e-12, max_iter=200)
    assert r.success, r.message
    assert torch.allclose(r.z, torch.full((3, 1), 0.7390851332151607, dtype=torch.float64))
    assert torch.isfinite(r.z).all()


def test_nan_input_gives_nonfinite_status_naming_cause():
    x = torch.randn(3, 4)
    x[1, 2] = float("nan")
    r = solve(lambda z, x: 0.5 * z + x, torch.zeros(3, 4), args=(x,), tol=1e-6)
    assert r.status == SolverStatus.NONFINITE
    assert int(r.sample_status[1]) == SolverStatus.NONFINITE and bool(r.converged[[0, 2]].all())
    assert "NaN" in r.message
    assert torch.isfinite(r.z).all()  # never hands back NaN


def test_diverging_map_is_reported():
    r = solve(lambda z: 2.0 * z + 1.0, torch.zeros(2, 3), method="forward", tol=1e-6, max_iter=200)
    assert r.status == SolverStatus.DIVERGED and "diverged" in r.message
    r2 = solve(lambda z: z * z + 1.0, torch.zeros(2, 3), method="anderson", tol=1e-6, max_iter=100)
    assert r2.status != SolverStatus.SUCCESS and torch.isfinite(r2.z).all()


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(SolverInputError, match="shape"):
        solve(lambda z: z[:, :-1], torch.zeros(2, 5))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(method="anderson", m=0), "m must be"),
        (dict(tol=-1e-3), "tol must be"),
        (dict(method="anderson", lamda=1e-4), "unknown option 'lamda'.*Did you mean 'lam'"),
        (dict(method="forward", m=5), "unknown option 'm' for solver 'forward'"),
        (dict(method="broyden2"), "unknown solver 'broyden2'"),
        (dict(max_iter=0), "max_iter"),
        (dict(method="anderson", beta=0.0), "beta"),
    ],
)
def test_bad_options_are_rejected(kwargs, pattern):
    with pytest.raises(SolverInputError, match=pattern):
        solve(lambda z: 0.5 * z, torch.zeros(2, 3), **kwargs)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    "kwargs",
    [dict(method="anderson", name="lam"), dict(method="anderson", name="beta"),
     dict(method="anderson", name="max_coeff"), dict(method="forward", name="damping"),
     dict(name="tol"), dict(name="divergence_factor"), dict(name="compact_fraction")],
)
def test_nonfinite_float_options_are_refused_by_name(kwargs, value):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(SolverInputError, match=rf"{name} must be finite"):
        solve(lambda z: 0.5 * z, torch.zeros(2, 3), **kwargs, **{name: value})


def test_non_numeric_float_option_is_refused_by_name():
    with pytest.raises(SolverInputError, match="lam must be a real number"):
        solve(lambda z: 0.5 * z, torch.zeros(2, 3), lam="1e-4")


def test_the_returned_iterate_is_the_best_seen_not_the_last():
    # Forward iteration on a map whose residual at the k-th evaluation is steps[k] (abs mode):
    # it falls to 0.1 at the third evaluation and rises after it, within max_iter.
    steps = [1.0, 0.5, 0.1, 0.3, 0.8, 2.0]
    e = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    calls = {"n": 0}

    def f(z):
        k = calls["n"]
        calls["n"] += 1
        return z + steps[k] * e.expand_as(z)

    z0 = torch.zeros(2, 3, dtype=torch.float64)
    r = solve(f, z0, method="forward", tol=1e-12, max_iter=len(steps), stop_mode="abs", divergence_factor=None)
    assert r.status == SolverStatus.MAX_ITER and r.iterations == len(steps)
    best = 2  # the iterate evaluated third: z0 + (1.0 + 0.5) e, residual 0.1
    assert torch.allclose(r.z, z0 + sum(steps[:best]) * e)
    assert torch.allclose(r.residual, torch.full((2,), steps[best], dtype=torch.float64))
    last = z0 + sum(steps[:-1]) * e
    assert not torch.allclose(r.z, last)
    assert torch.allclose(r.residual, r.trace.min(0).values)


def test_anderson_returns_the_lowest_residual_iterate_of_a_map_without_fixed_point():
    f = lambda z: z * z + 1.0  # noqa: E731  (no real fixed point: the residual cannot reach 0)
    r = solve(f, torch.zeros(3, 2, dtype=torch.float64), method="anderson", tol=1e-8, max_iter=12,
              divergence_factor=None)
    assert not r.success
    assert torch.allclose(r.residual, r.trace.min(0).values)  # min over the trace, not its last row
    fz = f(r.z)
    assert torch.allclose((fz - r.z).norm(dim=1) / fz.norm(dim=1), r.residual, rtol=1e-6)


def test_forward_damping_mixes_the_iterate_with_its_image():
    # f(z) = 2 - z has z* = 1; plain iteration from 0 oscillates 0, 2, 0, ... forever,
    # damping 0.5 lands on z* in one step: z1 = 0.5 * 0 + 0.5 * 2.
    f = lambda z: 2.0 - z  # noqa: E731
    z0 = torch.zeros(2, 3, dtype=torch.float64)
    plain = solve(f, z0, method="forward", tol=1e-10, max_iter=20)
    assert plain.status == SolverStatus.MAX_ITER
    damped = solve(f, z0, method="forward", tol=1e-10, max_iter=20, damping=0.5)
    assert damped.success and damped.iterations == 2
    assert torch.allclose(damped.z, torch.ones_like(z0))
    # A contractive map: one damped step is exactly (1 - d) z0 + d f(z0).
    g = lambda z: 0.5 * z + 1.0  # noqa: E731
    one = solve(g, torch.full((1, 2), 4.0, dtype=torch.float64), method="forward", damping=0.25,
                max_iter=2, tol=1e-12, divergence_factor=None)
    # iterates: 4 (residual 1), then 0.75 * 4 + 0.25 * 3 = 3.75 (residual 0.875): the best is the last
    assert torch.allclose(one.z, torch.full((1, 2), 3.75, dtype=torch.float64))
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(SolverInputError, match="damping"):
            solve(g, torch.zeros(1, 2), method="forward", damping=bad)


def test_bad_z0_is_rejected():
    with pytest.raises(SolverInputError, match="NaN"):
        solve(lambda z: z, torch.tensor([[float("nan")]]))
    with pytest.raises(SolverInputError, match="batch size"):
        solve(lambda z, x: z + x, torch.zeros(2, 3), args=(torch.zeros(3, 3),))


def test_beta_mixing_and_absolute_lambda_converge():
    f, z_star = linear_problem(rho=0.9)
    for opts in (dict(beta=0.5), dict(lam_mode="absolute", lam=1e-4), dict(m=1), dict(m=10)):
        r = solve(f, torch.zeros_like(z_star), tol=1e-8, max_iter=2000, **opts)
        assert r.success, (opts, r.message)
        assert torch.allclose(r.z, z_star, atol=1e-5)


@pytest.fixture
def clean_registry():
    """Leave the solver registry as it was (tests below register names of their own)."""
    from andersonn.solvers import registry

    saved = dict(registry._REGISTRY)
    yield registry._REGISTRY
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_registry_plugs_in_a_new_solver_by_name(clean_registry):
    @register_solver("test-damped")
    class Damped(FixedPointMethod):
        def step(self, z, fz, g, k, reject):
            return z + 0.7 * g, torch.zeros_like(reject)

    assert "test-damped" in andersonn.available_solvers()
    r = solve(lambda z: 0.5 * z + 1.0, torch.zeros(2, 2), method="test-damped", tol=1e-7, max_iter=200)
    assert r.success and r.method == "test-damped"
    assert torch.allclose(r.z, torch.full((2, 2), 2.0))


def test_registering_a_taken_name_is_refused_unless_replace(clean_registry):
    class Half(FixedPointMethod):
        def step(self, z, fz, g, k, reject):
            return z + 0.5 * g, None

    builtin = clean_registry["anderson"]
    with pytest.raises(SolverInputError, match=r"'anderson' is already registered.*replace=True"):
        register_solver("anderson")(Half)
    assert clean_registry["anderson"] is builtin and Half.name == ""  # nothing changed
    register_solver("test-half")(Half)
    with pytest.raises(SolverInputError, match="'test-half' is already registered"):
        register_solver("test-half")(type("Other", (Half,), {}))
    other = register_solver("test-half", replace=True)(type("Other", (Half,), {}))
    assert andersonn.solvers.get_solver("test-half") is other
    assert {"anderson", "forward"} <= set(andersonn.available_solvers())


def test_a_method_bool_safeguard_counts_as_other_and_codes_as_its_causes(clean_registry):
    @register_solver("test-flagging")
    class Flagging(FixedPointMethod):
        restart_causes = ("tired",)

        def step(self, z, fz, g, k, reject):
            if k == 2:
                return fz, torch.ones_like(reject)  # a bool mask: cause unnamed
            if k == 3:
                return fz, torch.tensor([0, 1], device=z.device)[: z.shape[0]]  # code 1: "tired"
            return fz, None

    r = solve(lambda z: 0.5 * z + 1.0, torch.zeros(2, 3), method="test-flagging", tol=1e-7, max_iter=200)
    assert r.success
    assert r.restarts_by_cause["other"].tolist() == [1, 1]
    assert r.restarts_by_cause["tired"].tolist() == [0, 1]
    assert r.restarts.tolist() == [1, 2]


def test_rejected_row_does_not_reuse_its_zeroed_history_column():
    # A non-finite evaluation zeroes that sample's newest history column; the sample restarts
    # from its best iterate and must not extrapolate with the zero column (which pulls it to z = 0,
    # back to the starting residual of 1).
    f, z_star = linear_problem(batch=2, rho=0.9)
    r = solve(nan_on_call(f, call=8, row=0, col=3), torch.zeros_like(z_star), tol=1e-10, max_iter=500, m=5)
    assert r.success, r.message
    t = r.trace[:, 0]
    assert float(t[8:12].max()) < 10 * float(t[6]), t[5:14]


@pytest.mark.parametrize("kwargs", [{}, {"lam_mode": "absolute"}, {"beta": 0.7}, {"m": 3, "check_every": 3}])
def test_cpu_fast_paths_match_the_general_masked_path(kwargs):
    # The CPU skips per-sample masks and safeguard bookkeeping while nothing needs them; forcing
    # the general path (what accelerators run) must give the same iterates, NFE and statuses.
    a = torch.linspace(0.2, 0.97, 6, dtype=torch.float64)[:, None] * torch.linspace(0.5, 1.0, 16, dtype=torch.float64)

    def f(z, c):
        return c * torch.tanh(z) + 1.0

    def run(shortcuts):
        return solve(f, torch.zeros(6, 16, dtype=torch.float64), args=(a,), tol=1e-9, max_iter=300,
                     cpu_shortcuts=shortcuts, **kwargs)

    fast, general = run(True), run(False)
    assert fast.success and general.success
    assert torch.equal(fast.nfe, general.nfe)
    assert torch.allclose(fast.z, general.z, rtol=1e-10, atol=1e-12)
    assert torch.allclose(fast.trace, general.trace, rtol=1e-6, atol=1e-12, equal_nan=True)
    assert torch.equal(fast.sample_status, general.sample_status)
    for cause, n in fast.restarts_by_cause.items():
        assert torch.equal(n, general.restarts_by_cause[cause]), cause


def test_broyden_takes_a_sample_that_converges_before_its_first_step():
    """A sample already at its fixed point retires before Broyden's first step; the others go on."""
    a = torch.tensor([0.5, 0.9, 0.9], dtype=torch.float64)[:, None].expand(3, 4)
    z0 = torch.zeros(3, 4, dtype=torch.float64)
    z0[0] = 2.0  # z = 0.5 z + 1 has z* = 2
    r = solve(lambda z, c: c * z + 1.0, z0, method="broyden", args=(a,), tol=1e-10, max_iter=200)
    assert r.success, r.message
    assert int(r.nfe[0]) == 1 and torch.allclose(r.z[1:], torch.full((2, 4), 10.0, dtype=torch.float64))
