"""Tuple (multi-scale) DEQ states: packed for the solvers, gradients against autograd through an unrolled solve."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from andersonn import DEQ, SolverInputError
from andersonn.state import StateLayout


class TwoScale(nn.Module):
    """A two-resolution layer in the style of MDEQ: each scale is updated from itself, the other scale
    (pooled or upsampled) and its own injection."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.fine = nn.Conv2d(channels, channels, 3, padding=1)
        self.coarse = nn.Conv2d(channels, channels, 3, padding=1)
        for conv in (self.fine, self.coarse):
            nn.init.normal_(conv.weight, std=0.08)

    def forward(self, z, x):
        fine, coarse = z
        new_fine = torch.tanh(self.fine(fine) + 0.3 * F.interpolate(coarse, scale_factor=2) + x[0])
        new_coarse = torch.tanh(self.coarse(coarse) + 0.3 * F.avg_pool2d(fine, 2) + x[1])
        return new_fine, new_coarse


def _unrolled(f, x, iters):
    z = tuple(torch.zeros_like(p) for p in x)
    for _ in range(iters):
        z = f(z, x)
    return z


def _inputs(batch=3):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(batch, 4, 6, 6, generator=g, dtype=torch.float64),
         torch.randn(batch, 4, 3, 3, generator=g, dtype=torch.float64))
    w = (torch.randn(batch, 4, 6, 6, generator=g, dtype=torch.float64),
         torch.randn(batch, 4, 3, 3, generator=g, dtype=torch.float64))
    return x, w


@pytest.mark.parametrize("solver", ["anderson", "forward"])
def test_tuple_state_ift_gradients_match_autograd_through_an_unrolled_solve(solver):
    torch.manual_seed(0)
    f = TwoScale().double()
    x, w = _inputs()
    x_ref = tuple(p.clone().requires_grad_() for p in x)
    z_ref = _unrolled(f, x_ref, 300)
    assert all(float((a - b).detach().abs().max()) < 1e-13 for a, b in zip(f(z_ref, x_ref), z_ref)), "reference did not converge"
    sum((z * wi).sum() for z, wi in zip(z_ref, w)).backward()
    ref = {n: p.grad.clone() for n, p in f.named_parameters()}
    ref_x = [p.grad.clone() for p in x_ref]
    f.zero_grad()

    deq = DEQ(f, solver=solver, tol=1e-13, max_iter=300)
    x_ift = tuple(p.clone().requires_grad_() for p in x)
    z = deq(x_ift)
    assert isinstance(z, tuple) and [p.shape for p in z] == [p.shape for p in x]
    sum((zi * wi).sum() for zi, wi in zip(z, w)).backward()
    assert deq.last_forward.success and deq.last_backward.success
    assert deq.state_layout.sizes == (144, 36) and deq.last_forward.z.shape == (3, 180)
    for a, b in zip(z, z_ref):
        assert torch.allclose(a, b, atol=1e-11)
    for n, p in f.named_parameters():
        assert torch.allclose(p.grad, ref[n], rtol=1e-8, atol=1e-10), n
    for got, want in zip(x_ift, ref_x):
        assert torch.allclose(got.grad, want, rtol=1e-8, atol=1e-10)


def test_tuple_state_warm_start_phantom_jfb_correction_states_and_spectral_radius():
    torch.manual_seed(0)
    f = TwoScale().double()
    x, _ = _inputs()
    deq = DEQ(f, tol=1e-10, max_iter=60, correction_states=2)
    cold = deq(x)
    assert [tuple(s.shape) for s in deq.last_correction_states[0]] == [(3, 4, 6, 6), (3, 4, 3, 3)]
    n_cold = deq.last_forward.mean_nfe
    with torch.no_grad():
        warm = deq(x, z0=tuple(p.detach() for p in cold))
    assert deq.last_forward.mean_nfe < n_cold
    assert all(torch.allclose(a, b, atol=1e-8) for a, b in zip(warm, cold))
    for backward in ("jfb", "phantom"):
        out = DEQ(f, backward=backward, tol=1e-10, max_iter=60)(x)
        assert isinstance(out, tuple) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(out, cold))
    rho = DEQ(f, tol=1e-10, max_iter=60).spectral_radius(x, iters=40)
    assert rho.shape == (3,) and bool(((rho > 0) & (rho < 1)).all())


def test_a_tensor_injection_can_drive_a_tuple_state():
    f = lambda z, x: (0.5 * z[0] + x, 0.5 * z[1] + z[0].sum(1, keepdim=True))  # noqa: E731
    x = torch.ones(2, 3, dtype=torch.float64)
    fine, coarse = DEQ(f, tol=1e-12, max_iter=200)(x, z0=(torch.zeros(2, 3, dtype=torch.float64),
                                                           torch.zeros(2, 1, dtype=torch.float64)))
    assert torch.allclose(fine, torch.full((2, 3), 2.0, dtype=torch.float64))
    assert torch.allclose(coarse, torch.full((2, 1), 12.0, dtype=torch.float64))


def test_bad_tuple_states_are_refused_with_the_part_named():
    x = (torch.randn(2, 3), torch.randn(2, 4))
    deq = DEQ(lambda z, x: z)
    with pytest.raises(SolverInputError, match=r"x\[1\] has batch 3"):
        deq((torch.randn(2, 3), torch.randn(3, 4)))
    with pytest.raises(SolverInputError, match=r"x\[1\] is torch.float64"):
        deq((torch.randn(2, 3), torch.randn(2, 4, dtype=torch.float64)))
    with pytest.raises(SolverInputError, match="empty tuple"):
        deq(())
    with pytest.raises(SolverInputError, match="must return a tuple"):
        DEQ(lambda z, x: z[0])(x)
    with pytest.raises(SolverInputError, match="per-sample shapes"):
        DEQ(lambda z, x: (z[0], z[1][:, :2]))(x)
    with pytest.raises(SolverInputError, match="NaN or Inf"):
        deq((torch.randn(2, 3), torch.full((2, 4), float("nan"))))
    with pytest.raises(SolverInputError, match="z0 must be a tensor or a tuple"):
        deq(x, z0=[1.0, 2.0][0])


def test_state_layout_round_trips_and_unpacks_a_compacted_batch():
    parts = (torch.randn(5, 2, 3), torch.randn(5, 7))
    layout = StateLayout.of(parts, "z")
    flat = layout.pack(parts)
    back = layout.unpack(flat[[0, 3]])  # fewer rows, as a compacted solve has
    assert torch.equal(back[0], parts[0][[0, 3]]) and torch.equal(back[1], parts[1][[0, 3]])
