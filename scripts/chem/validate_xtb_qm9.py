"""Measure GFN2-xTB dipoles against QM9's B3LYP dipoles.

Protocols compared on the same random QM9 subset:
  * xTB at the QM9 (B3LYP) geometry               -- method error only
  * xTB on 1 ETKDG+MMFF conformer                  -- the baseline pipeline
  * xTB on up to 10 conformers: lowest-xTB-energy / Boltzmann RMS (the shipped "gfn2" method)
  * "gfn2-opt": the 3 lowest conformers relaxed with GFN2-xTB, Boltzmann RMS (first --n-opt molecules)

Usage: OMP_NUM_THREADS=1 python scripts/chem/validate_xtb_qm9.py --n 500 --out src/andersonn/data/files/chem/xtb_vs_qm9.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from andersonn.chem.labels import label_molecules
from andersonn.chem.qm import tblite_version, xtb_dipole
from andersonn.chem.sources import load_qm9


def stats(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    return {
        "n": int(len(ref)),
        "mae_debye": float(np.mean(np.abs(pred - ref))),
        "rmse_debye": float(np.sqrt(np.mean((pred - ref) ** 2))),
        "pearson_r": float(np.corrcoef(pred, ref)[0, 1]),
        "mean_signed_error_debye": float(np.mean(pred - ref)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-opt", type=int, default=200)
    ap.add_argument("--cache", default="cache/chem_qm9_validation.sqlite")
    ap.add_argument("--out", default="src/andersonn/data/files/chem/xtb_vs_qm9.json")
    args = ap.parse_args()

    mols = load_qm9(args.n, seed=args.seed, with_geometry=True)
    t0 = time.perf_counter()
    at_geom = []
    for m in mols:
        _, mu = xtb_dipole(m["numbers"], m["positions"])
        at_geom.append(float(np.linalg.norm(mu)))
    t_geom = (time.perf_counter() - t0) / len(mols)
    rows = label_molecules(mols, "gfn2", args.cache, scheduler="synchronous", desc="xTB on QM9")
    ok = [i for i, r in enumerate(rows) if not r.get("error")]
    ref = np.array([mols[i]["dipole_debye"] for i in ok])
    opt_rows = label_molecules(mols[: args.n_opt], "gfn2-opt", args.cache, scheduler="synchronous", desc="xTB-opt on QM9")
    ok_opt = [i for i, r in enumerate(opt_rows) if not r.get("error") and i in set(ok)]
    ref_opt = np.array([mols[i]["dipole_debye"] for i in ok_opt])
    res = {
        "reference": "QM9 B3LYP/6-31G(2df,p) dipole (qm9pack CSV)",
        "program": f"tblite {tblite_version()} GFN2-xTB",
        "subset": f"{args.n} random QM9 molecules, seed {args.seed}",
        "failed": [{"name": mols[i]["name"], "error": rows[i]["error"]} for i, r in enumerate(rows) if r.get("error")],
        "xtb_at_qm9_geometry": stats(np.array([at_geom[i] for i in ok]), ref),
        "xtb_1_conformer": stats(np.array([rows[i]["dipole_first_debye"] for i in ok]), ref),
        "xtb_lowest_energy_of_10": stats(np.array([rows[i]["dipole_lowest_debye"] for i in ok]), ref),
        "xtb_boltzmann_rms_of_10": stats(np.array([rows[i]["dipole_debye"] for i in ok]), ref),
        "same_subset_for_gfn2_opt": {
            "xtb_1_conformer": stats(np.array([rows[i]["dipole_first_debye"] for i in ok_opt]), ref_opt),
            "xtb_boltzmann_rms_of_10": stats(np.array([rows[i]["dipole_debye"] for i in ok_opt]), ref_opt),
            "xtb_opt_boltzmann_rms_of_3": stats(np.array([opt_rows[i]["dipole_debye"] for i in ok_opt]), ref_opt),
            "xtb_opt_lowest": stats(np.array([opt_rows[i]["dipole_lowest_debye"] for i in ok_opt]), ref_opt),
            "xtb_at_qm9_geometry": stats(np.array([at_geom[i] for i in ok_opt]), ref_opt),
        },
        "seconds_per_molecule": {
            "gfn2_opt": float(np.mean([opt_rows[i]["seconds"] for i in ok_opt])),
            "xtb_single_point_at_qm9_geometry": t_geom,
            "gfn2_10_conformers": float(np.mean([rows[i]["seconds"] for i in ok])),
        },
        "qm9_dipole_median_debye": float(np.median([m["dipole_debye"] for m in mols])),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "failed"}, indent=2), "failed:", len(res["failed"]))


if __name__ == "__main__":
    main()
