"""PySCF B3LYP/def2-SVP vs GFN2-xTB dipoles on the same geometry (the lowest-xTB-energy
MMFF conformer) for small COVID-19 drugs and a few QM9 molecules.

Usage: OMP_NUM_THREADS=1 nice -n 10 python scripts/chem/compare_dft_xtb.py --drugs favipiravir,amantadine --n-qm9 6
Writes src/andersonn/data/files/chem/dft_vs_xtb.csv and prints MAE / r / timings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from andersonn.chem.labels import label_molecules
from andersonn.fileio import write_csv
from andersonn.chem.sources import CHEM_DATA_DIR, load_covid_drugs, load_qm9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drugs", default="favipiravir,amantadine,ebselen,ribavirin,galidesivir")
    ap.add_argument("--n-qm9", type=int, default=6)
    ap.add_argument("--cache", default="cache/chem_labels.sqlite")
    ap.add_argument("--out", default=str(CHEM_DATA_DIR / "dft_vs_xtb.csv"))
    args = ap.parse_args()

    wanted = args.drugs.split(",")
    drugs = [{"name": d["name"], "smiles": d["smiles"], "source": "covid"} for d in load_covid_drugs() if d["name"] in wanted]
    qm9 = [{"name": m["name"], "smiles": m["smiles"], "source": "qm9", "qm9_dft": m["dipole_debye"]}
           for m in load_qm9(args.n_qm9, seed=7)]
    mols = qm9 + drugs
    dft = label_molecules(mols, "b3lyp", args.cache, scheduler="synchronous", desc="B3LYP/def2-SVP")
    xtb = label_molecules(mols, "gfn2", args.cache, scheduler="synchronous", desc="GFN2-xTB")
    rows = []
    for m, d, x in zip(mols, dft, xtb):
        rows.append({
            "name": m["name"], "source": m["source"], "smiles": m["smiles"],
            "b3lyp_def2svp_debye": d.get("dipole_debye"), "xtb_same_geometry_debye": d.get("xtb_same_geometry_debye"),
            "xtb_gfn2_boltzmann_debye": x.get("dipole_debye"), "qm9_b3lyp_debye": m.get("qm9_dft"),
            "dft_seconds": d.get("seconds"), "xtb_seconds": x.get("seconds"), "error": d.get("error") or x.get("error"),
            "pyscf_version": d.get("program_version"), "tblite_version": x.get("program_version"),
        })
    write_csv(rows, args.out)
    ok = [r for r in rows if not r["error"]]
    a = np.array([r["b3lyp_def2svp_debye"] for r in ok])
    b = np.array([r["xtb_same_geometry_debye"] for r in ok])
    summary = {
        "n": len(ok),
        "mae_xtb_vs_b3lyp_same_geometry_debye": float(np.mean(np.abs(a - b))),
        "pearson_r": float(np.corrcoef(a, b)[0, 1]) if len(ok) > 2 else None,
        "mean_dft_seconds": float(np.mean([r["dft_seconds"] for r in ok])),
        "mean_xtb_seconds_10_conformers": float(np.mean([r["xtb_seconds"] for r in ok])),
        "failed": [(r["name"], r["error"]) for r in rows if r["error"]],
    }
    print(json.dumps(summary, indent=2))
    Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
