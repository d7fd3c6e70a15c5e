"""The loop's iterate buffers: the next iterate never overwrites the current or the best one."""

import torch

from andersonn import Workspace, solve
from andersonn.solvers import base


def _scripted(scales):
    """f(z) = z + c_k d with c_k scripted per call: the residual falls, then rises for many calls,
    so the best iterate stays an old iterate (held in one of the loop's buffers) while the
    loop keeps writing new ones."""
    d = torch.linspace(-1.0, 1.0, 16, dtype=torch.float64).repeat(3, 1)
    calls = {"k": 0}

    def f(z):
        c = scales[min(calls["k"], len(scales) - 1)]
        calls["k"] += 1
        return z + c * d

    return f


def _run(pool: bool, monkeypatch, workspace=None):
    monkeypatch.setattr(base, "_ITERATE_POOL", pool)
    scales = [1.0, 0.5, 0.05, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8]
    z0 = torch.full((3, 16), 10.0, dtype=torch.float64)
    return solve(_scripted(scales), z0, method="anderson", tol=1e-9, max_iter=10, m=3,
                 divergence_factor=None, workspace=workspace)


def test_best_iterate_survives_many_steps_without_improvement(monkeypatch):
    ref = _run(False, monkeypatch)
    # The best residual is the third call's; seven worse calls follow.
    assert torch.equal(ref.rel_residual, ref.trace[2])
    for ws in (None, Workspace()):
        r = _run(True, monkeypatch, ws)
        assert torch.equal(r.z, ref.z)
        assert torch.equal(r.trace, ref.trace)


def test_anderson_writes_into_the_lent_buffer(monkeypatch):
    # Every step after the first returns one of the three buffers (no new state-sized tensor).
    seen = []
    from andersonn.solvers.anderson import Anderson

    orig = Anderson.step

    def spy(self, z, fz, g, k, reject):
        out = orig(self, z, fz, g, k, reject)
        seen.append((self.next_buffer is not None and out[0].data_ptr() == self.next_buffer.data_ptr()))
        return out

    monkeypatch.setattr(Anderson, "step", spy)
    f = lambda z: 0.5 * torch.tanh(z) + 1.0  # noqa: E731
    solve(f, torch.zeros(4, 8), tol=1e-6, max_iter=30)
    assert len(seen) > 5 and all(seen)
