#!/usr/bin/env python
"""Compare our pore sizes (andersonn.materials.porespace) with Zeo++'s on CoRE MOF 2019.

Usage::

    OMP_NUM_THREADS=1 python scripts/materials/porespace_check.py [--n 30] [--seed 0] \
        [--spacing 0.5] [--out reports/porespace-check.json]

Draws ``--n`` readable structures, as evenly as possible from the four PLD
classes (seeded), extracts their CIFs into a temporary folder, and compares
2 x percolation radius with the table's ``PLD``, 2 max(d) with ``LCD`` and our
free-path sphere with ``LFPD``: mean absolute error, mean signed error (ours -
Zeo++), Pearson correlation, and the fraction whose PLD class (edges 4, 6, 10 A)
agrees.  Times the grid, the percolation bisection (with the LFPD) and the 32-column
profile of the image channels, per structure (the CIF reading is timed apart).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from andersonn.materials.cif import CifError, read_structure
from andersonn.materials.coremof import coremof_table, extract_cifs
from andersonn.materials.pores import CLASS_NAMES, pore_class
from andersonn.materials.porespace import DEFAULT_MAX_RADIUS, distance_grid, pore_diameters, pore_profile


def _stats(ours: np.ndarray, ref: np.ndarray) -> dict:
    err = ours - ref
    return {
        "mae": float(np.mean(np.abs(err))),
        "mean_signed_error": float(np.mean(err)),
        "median_signed_error": float(np.median(err)),
        "pearson_r": float(np.corrcoef(ours, ref)[0, 1]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spacing", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=Path("reports/porespace-check.json"))
    args = ap.parse_args()

    table = coremof_table()
    labels = {r: pore_class(row["PLD"]) for r, row in sorted(table.items())
              if np.isfinite(row["PLD"]) and np.isfinite(row["LCD"])}
    rng = np.random.default_rng(args.seed)
    per_class = [args.n // 4 + (1 if c < args.n % 4 else 0) for c in range(4)]
    # twice as many candidates as needed, as some CIFs are rejected as disordered
    candidates = {}
    for c in range(4):
        refs = sorted(r for r, y in labels.items() if y == c)
        candidates[c] = [refs[i] for i in rng.permutation(len(refs))[: 2 * per_class[c]]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = extract_cifs([r for c in candidates.values() for r in c], tmp)
        extract_s = time.perf_counter() - t0
        for c in range(4):
            kept = 0
            for ref in candidates[c]:
                if kept == per_class[c]:
                    break
                t0 = time.perf_counter()
                try:
                    s = read_structure(paths[ref])
                except CifError as exc:
                    print(f"skip {ref}: {exc.reason}")
                    continue
                t_read = time.perf_counter() - t0
                kept += 1
                t0 = time.perf_counter()
                grid = distance_grid(s, args.spacing)
                t_grid = time.perf_counter() - t0
                t0 = time.perf_counter()
                dia = pore_diameters(s, grid=grid)  # percolation bisection, then the LFPD
                t_perc = time.perf_counter() - t0
                t0 = time.perf_counter()
                pore_profile(grid, s.lattice, np.linspace(0.0, DEFAULT_MAX_RADIUS, 32))
                t_prof = time.perf_counter() - t0
                row = table[ref]
                rows.append({
                    "refcode": ref, "n_atoms": len(s), "grid": list(grid.shape),
                    "pld_zeo": row["PLD"], "lcd_zeo": row["LCD"], "lfpd_zeo": row["LFPD"],
                    "pld": dia["pld"], "lcd": dia["lcd"], "lfpd": dia["lfpd"],
                    "along": list(dia["along"]), "dimensionality": dia["dimensionality"],
                    "class_zeo": pore_class(row["PLD"]), "class": pore_class(dia["pld"]),
                    "seconds_read": t_read, "seconds_grid": t_grid,
                    "seconds_percolation": t_perc, "seconds_profile32": t_prof,
                })
                r = rows[-1]
                print(f"{ref:40s} {len(s):5d} at  PLD {r['pld']:6.2f} / {r['pld_zeo']:6.2f}  "
                      f"LCD {r['lcd']:6.2f} / {r['lcd_zeo']:6.2f}  dim {r['dimensionality']}  "
                      f"{t_grid + t_perc:.2f}+{t_prof:.2f} s", flush=True)

    def col(key):
        return np.array([r[key] for r in rows], dtype=float)

    agree = col("class") == col("class_zeo")
    confusion = np.zeros((4, 4), dtype=int)
    for r in rows:
        confusion[r["class_zeo"], r["class"]] += 1
    summary = {
        "n": len(rows),
        "spacing": args.spacing,
        "seed": args.seed,
        "radii": "pymatgen van der Waals (porespace.vdw_radius)",
        "pld": _stats(col("pld"), col("pld_zeo")),
        "lcd": _stats(col("lcd"), col("lcd_zeo")),
        "lfpd": _stats(col("lfpd"), col("lfpd_zeo")),
        "pld_class_agreement": float(agree.mean()),
        "confusion_zeo_rows_ours_cols": {"classes": CLASS_NAMES, "counts": confusion.tolist()},
        "seconds_per_structure": {
            k: float(col(k).mean()) for k in ("seconds_read", "seconds_grid", "seconds_percolation",
                                              "seconds_profile32")
        },
        "seconds_max_grid_plus_percolation": float((col("seconds_grid") + col("seconds_percolation")).max()),
        "seconds_extract": extract_s,
        "median_atoms": float(np.median(col("n_atoms"))),
        "max_atoms": int(col("n_atoms").max()),
    }
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "structures": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
