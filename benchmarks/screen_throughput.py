"""Throughput of `andersonn screen` with the shipped molecule models, on SMILES a user might bring.

Draws N molecules (seeded) from the drug-like label file shipped with the package (RDKit NCI/WEHI sets,
ChEMBL approved drugs, COVID-19 drugs) and, with --qm9 K, K QM9 molecules too, writes them to a CSV and
screens it through `andersonn.screening.screen` exactly as the command does (shipped models, local Dask
cluster of --n-workers processes, one thread each, progress bar). Reports wall time, molecules per second,
how many each shipped model answered, and the failures by reason, as JSON.

Run it alone on the machine: a timing beside other work measures nothing.

Usage: python benchmarks/screen_throughput.py --n 2000 --qm9 0 --n-workers 2 --out benchmarks/results/screen_throughput.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="drug-like molecules to screen")
    ap.add_argument("--qm9", type=int, default=0, help="QM9 molecules to add (they go to the QM9 model)")
    ap.add_argument("--n-workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/screen_throughput.json"))
    args = ap.parse_args()
    if args.n < 0 or args.qm9 < 0 or args.n + args.qm9 < 1 or args.n_workers < 1:
        sys.exit("error: --n and --qm9 must be >= 0 with at least one molecule, --n-workers >= 1")
    import numpy as np

    from andersonn.chem.sources import read_labels_csv
    from andersonn.fileio import write_csv
    from andersonn.screening import screen, shipped_models

    rng = np.random.default_rng(args.seed)
    pool = [r for r in read_labels_csv() if r.get("smiles")]
    pick = rng.permutation(len(pool))[: args.n]
    molecules = [(f"druglike_{i}", pool[i]["smiles"]) for i in sorted(pick)]
    if args.qm9:
        from andersonn.chem.sources import load_qm9

        molecules += [(m["name"], m["smiles"]) for m in load_qm9(n=args.qm9, seed=args.seed)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "molecules.csv"
        write_csv([{"name": n, "smiles": smi} for n, smi in molecules], path, ["name", "smiles"])
        timing: dict[str, float] = {}
        t0 = time.perf_counter()
        rows = screen([path], None, task="molecules", n_workers=args.n_workers, progress=True, timing=timing)
        wall = time.perf_counter() - t0
    failures = collections.Counter(_reason(r["error"]) for r in rows if r.get("error"))
    result = {
        "molecules": len(rows), "classified": sum(1 for r in rows if not r.get("error")),
        "by_model": dict(collections.Counter(r.get("model", "none (failed)") for r in rows)),
        "wall_s": round(wall, 1), "molecules_per_s": round(len(rows) / wall, 2),
        "timing": timing, "failures_by_reason": dict(failures.most_common()),
        "models": [p.name for p in shipped_models("molecules")],
        "machine": {"cpus": os.cpu_count(), "n_workers": args.n_workers, "python": platform.python_version()},
        "command": " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("molecules", "classified", "by_model", "wall_s", "molecules_per_s")}))
    return 0


def _reason(error: str) -> str:
    """A failure's kind, without the molecule-specific part (atom counts, SMILES)."""
    for kind in ("exceed the image size", "could not parse", "embedding failed", "no MMFF94", "charged"):
        if kind in error:
            return kind
    return error.split(":")[0][:60]


if __name__ == "__main__":
    raise SystemExit(main())
