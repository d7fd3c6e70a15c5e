"""Fast paths added for speed must give the same answers as the plain ones."""

import pytest
import torch

from andersonn.solvers import rows, solve


@pytest.mark.parametrize("keep", [[0, 1, 2, 3], [1, 2, 3], [0, 2, 5, 6, 7, 9], [9], [3, 4, 5, 6, 7, 8, 9]])
def test_block_row_copies_match_index_select(keep, monkeypatch):
    monkeypatch.setattr(rows, "_BLOCK_COPY_BYTES", 0)
    t = torch.randn(10, 3, 7)
    idx = torch.tensor(keep)
    ref = t.index_select(0, idx)
    runs = rows.row_runs(keep)
    assert torch.equal(rows.take_rows(t, idx, runs), ref)
    assert torch.equal(rows.take_rows(t[:, 1], idx, runs), ref[:, 1])  # strided rows
    assert torch.equal(rows.compact_rows_(t.clone(), idx, runs), ref)


def test_cpu_block_compaction_gives_the_same_solve(monkeypatch):
    # A mixed batch big enough that retiring samples compacts the history.
    g = torch.Generator().manual_seed(0)
    a = torch.rand(12, 1, generator=g, dtype=torch.float64) * 0.9 + 0.05
    a = a * torch.linspace(0.5, 1.0, 64, dtype=torch.float64)
    f = lambda z, c: c * torch.tanh(z) + 1.0  # noqa: E731
    runs = []
    for threshold in (0, 1 << 60):  # block copies, then index_select everywhere
        monkeypatch.setattr(rows, "_BLOCK_COPY_BYTES", threshold)
        runs.append(solve(f, torch.zeros(12, 64, dtype=torch.float64), args=(a,), tol=1e-10, max_iter=300, m=4))
    fast, plain = runs
    assert fast.success and plain.success
    assert torch.equal(fast.nfe, plain.nfe)
    assert torch.allclose(fast.z, plain.z, rtol=0, atol=1e-12)


def test_a_method_with_a_one_argument_keep_is_refused_at_registration():
    from andersonn.solvers import FixedPointMethod, SolverInputError, available_solvers, register_solver

    class OldKeep(FixedPointMethod):
        def step(self, z, fz, g, k, reject):
            return fz, None

        def keep(self, rows):  # misses the runs argument the loop passes
            pass

    with pytest.raises(SolverInputError, match=r"OldKeep.keep must take \(self, rows, runs\)"):
        register_solver("oldkeep")(OldKeep)
    assert "oldkeep" not in available_solvers()


def test_a_method_whose_keep_compacts_its_own_buffer_in_place(monkeypatch):
    # residual() hands back a view of the method's buffer, which keep() compacts in place: the loop
    # must have copied f(z) and g out before (the method keeps no current()).
    monkeypatch.setattr(rows, "_BLOCK_COPY_BYTES", 0)
    from andersonn.solvers import FixedPointMethod, register_solver

    @register_solver("halfstep_inplace", replace=True)
    class HalfStep(FixedPointMethod):
        def start(self, z, max_iter):
            self.buf = torch.zeros_like(z)

        def residual(self, z, fz, k):
            torch.sub(fz, z, out=self.buf)
            return self.buf

        def step(self, z, fz, g, k, reject):
            return z + 0.5 * g, torch.zeros_like(reject)

        def keep(self, keep, runs):
            self.buf = rows.compact_rows_(self.buf, keep, runs)

    a = torch.linspace(0.1, 0.9, 8, dtype=torch.float64)[:, None].expand(8, 4)
    r = solve(lambda z, c: c * z + 1.0, torch.zeros(8, 4, dtype=torch.float64), method="halfstep_inplace",
              args=(a,), tol=1e-10, max_iter=500)
    assert r.success
    assert torch.allclose(r.z, 1.0 / (1.0 - a), atol=1e-8)
    assert int(r.nfe.min()) < int(r.nfe.max())


def test_every_ablation_switches_something_off_and_keeps_the_answer():
    # benchmarks/ablations.py turns each speed change off from the outside; if a rename left a
    # switch patching nothing, its row would silently measure the shipped solver.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import ablations  # a broken import fails the test instead of skipping it
    from andersonn.solvers import anderson as anderson_mod

    watched = lambda: (rows._BLOCK_COPY_BYTES, anderson_mod.Anderson.residual_norm,  # noqa: E731
                       anderson_mod.Anderson.current)
    shipped = watched()
    a = torch.linspace(0.2, 0.95, 8, dtype=torch.float64)[:, None] * torch.linspace(0.5, 1.0, 32, dtype=torch.float64)
    ref = solve(lambda z, c: c * torch.tanh(z) + 1.0, torch.zeros(8, 32, dtype=torch.float64), args=(a,), tol=1e-10)
    for name, (_, ctx, opts, baseline) in ablations.VARIANTS.items():
        opts = dict(opts)
        if opts.pop("workspace", False):
            opts["workspace"] = ablations._WORKSPACE
        with ctx():
            changed = watched() != shipped or bool(opts)
            r = solve(lambda z, c: c * torch.tanh(z) + 1.0, torch.zeros(8, 32, dtype=torch.float64),
                      args=(a,), tol=1e-10, **opts)
        assert changed == (name != baseline), name
        assert baseline in ablations.VARIANTS, name
        assert torch.allclose(r.z, ref.z, atol=1e-9), name
    assert watched() == shipped  # every switch is put back
