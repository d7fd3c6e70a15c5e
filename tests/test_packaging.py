"""`pip install andersonn` is the DEQ library; chemistry, materials and Dask are extras (#16).

A missing extra is simulated in a subprocess by a finder at the head of ``sys.meta_path`` that refuses
the modules (an import of them then fails as if they were not installed), never by uninstalling anything.
(``sys.modules[name] = None`` does that too, but scikit-learn reads ``sys.modules["pandas"]`` directly and
breaks on a None there, which a real missing pandas does not do.)
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses, clusters or large fixtures: `make test` runs it, `make test-fast` does not

from andersonn.extras import EXTRAS, MissingExtraError, require_extra

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "andersonn"
EXTRA_MODULES = sorted({m for mods in EXTRAS.values() for m in mods})
CHEM, MATERIALS = list(EXTRAS["chem"]), list(EXTRAS["materials"])


def _run(code: str, blocked: list[str] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which the modules ``blocked`` cannot be imported."""
    prelude = textwrap.dedent(f"""
        import sys

        class _NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {list(blocked)!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, _NotInstalled())
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=os.environ | {"OMP_NUM_THREADS": "1", "COLUMNS": "200"})


def _cli(args: list[str], blocked: list[str]) -> subprocess.CompletedProcess:
    return _run(f"sys.argv = ['andersonn', *{args!r}]\nfrom andersonn.cli import main\nmain()\n", blocked)


def _one_line_error(p: subprocess.CompletedProcess, message: str) -> None:
    assert p.returncode == 2, p.stderr[-2000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
    assert message in lines[0], lines[0]


def test_importing_the_core_imports_no_extra():
    p = _run(f"""
        import json
        import andersonn, andersonn.solvers
        core = sorted(m for m in sys.modules if m.split('.')[0] in {EXTRA_MODULES!r})
        import andersonn.train, andersonn.data, andersonn.study, andersonn.screening, andersonn.cli
        cli = sorted(m for m in sys.modules if m.split('.')[0] in {EXTRA_MODULES!r})
        print(json.dumps([core, cli]))
    """)
    assert p.returncode == 0, p.stderr[-2000:]
    core, cli = json.loads(p.stdout.strip().splitlines()[-1])
    assert core == [], "import andersonn / andersonn.solvers must not import an extra"
    assert cli == [], "the CLI, training and the study load extras only when a command needs them"


def test_the_core_works_with_no_extra_installed():
    p = _run("""
        import torch, andersonn
        r = andersonn.solve(lambda z: 0.5 * z + 1.0, torch.zeros(2, 3), method="anderson", tol=1e-6)
        from andersonn.data import available_datasets, load_dataset
        ds = load_dataset("digits", image_size=8)
        print(r.status.name, ds.num_classes, "alms-qm9" in available_datasets())
        sys.argv = ["andersonn", "datasets"]
        from andersonn.cli import main
        main()
    """, EXTRA_MODULES)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "SUCCESS 10 True" in p.stdout and "digits" in p.stdout and "alms-pores" in p.stdout


def test_screening_molecules_without_chem_is_one_line(tmp_path):
    mols = tmp_path / "m.csv"
    mols.write_text("name,smiles\nwater,O\n")
    p = _cli(["screen", str(mols)], ["rdkit"])
    _one_line_error(p, "screening molecules needs the chem extra (rdkit is not installed): pip install 'andersonn[chem]'")


def test_screening_structures_without_materials_is_one_line():
    from andersonn.materials.examples import example_cif_path

    p = _cli(["screen", str(example_cif_path("NaCl"))], ["pymatgen"])
    _one_line_error(p, "screening MOF structures needs the materials extra (pymatgen is not installed): "
                       "pip install 'andersonn[materials]'")


def test_labelling_without_chem_is_one_line(tmp_path):
    mols = tmp_path / "m.smi"
    mols.write_text("CO methanol\n")
    p = _cli(["label", str(mols), "--method", "b3lyp"], ["pyscf"])
    _one_line_error(p, "labelling molecules needs the chem extra (pyscf is not installed): pip install 'andersonn[chem]'")


@pytest.mark.parametrize("dataset, blocked, message", [
    ("alms-qm9", CHEM, "the alms-qm9 dataset needs the chem extra (rdkit, tblite are not installed)"),
    ("alms-polarity", CHEM, "the alms-polarity dataset needs the chem extra (rdkit is not installed)"),
    ("alms-pores", MATERIALS, "the alms-pores dataset needs the materials extra (pymatgen, CoRE_MOF are not installed)"),
])
def test_training_on_an_alms_task_without_its_extra_is_one_line(tmp_path, dataset, blocked, message):
    p = _cli(["train", "--dataset", dataset, "--out", str(tmp_path / "run"), "--epochs", "1"], blocked)
    _one_line_error(p, message)


def test_importing_chem_or_materials_without_them_names_the_extra():
    p = _run("""
        from andersonn.extras import MissingExtraError
        for name in ("andersonn.chem.labels", "andersonn.materials"):
            try:
                __import__(name)
            except MissingExtraError as exc:
                print(exc)
    """, ["rdkit", "pymatgen"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.splitlines() == [
        "andersonn.chem needs the chem extra (rdkit is not installed): pip install 'andersonn[chem]'",
        "andersonn.materials needs the materials extra (pymatgen is not installed): pip install 'andersonn[materials]'",
    ]


def test_a_dask_map_without_dask_says_so_and_computes_nothing(tmp_path, monkeypatch):
    from andersonn.parallel import ResultCache, map_cached

    for name in EXTRAS["dask"]:
        monkeypatch.setitem(sys.modules, name, None)
    with ResultCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(MissingExtraError, match=r"needs the dask extra .*pip install 'andersonn\[dask\]'"):
            map_cached(lambda x: x, {"a": 1}, cache, progress=False)
        assert len(cache) == 0
        assert map_cached(lambda x: x + 1, {"a": 1}, cache, scheduler="synchronous", progress=False) == {"a": 2}


def test_require_extra():
    require_extra("dask", "x")  # installed here: no error
    with pytest.raises(ValueError, match="unknown extra"):
        require_extra("chemistry", "x")
    err = pytest.raises(MissingExtraError, require_extra, "chem", "f", ["no_such_module_here"]).value
    assert isinstance(err, ImportError) and err.extra == "chem" and err.missing == "no_such_module_here"


def test_pyproject_core_is_the_deq_library_and_all_is_every_extra():
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs):
        return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in reqs}

    core = names(meta["dependencies"])
    assert core == {"torch", "numpy", "scikit-learn", "matplotlib", "typer", "tqdm", "safetensors"}
    extras = meta["optional-dependencies"]
    dists = {"rdkit": "rdkit", "tblite": "tblite", "pyscf": "pyscf", "qm9pack": "qm9pack", "pandas": "pandas",
             "pymatgen": "pymatgen", "CoRE_MOF": "core-mof", "dask": "dask", "distributed": "dask"}
    for extra, modules in EXTRAS.items():
        assert {dists[m] for m in modules} <= names(extras[extra]), extra
    assert names(extras["all"]) == names(extras["chem"]) | names(extras["materials"]) | names(extras["dask"])
    assert "dask[distributed]>=2023.1" in extras["dask"]


def test_make_install_pins_torch_first_then_installs_every_extra():
    make = (ROOT / "Makefile").read_text()
    torch_at, all_at = make.index("pip install -q torch==2.13.0"), make.index('pip install -q -e ".[all,dev]"')
    assert torch_at < all_at
    assert "test: install" in make and "demo: install" in make


def test_no_module_imports_a_private_name_of_another():
    """The CLI (and everything else) imports public names only: a private helper is free to change."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                found += [f"{path.relative_to(SRC)}: {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []
