"""Label the shipped molecules (COVID-19 drugs + a random subset of RDKit's NCI/WEHI sets) with GFN2-xTB.

Writes ``src/andersonn/data/files/chem/xtb_dipoles.csv`` after every chunk, so an
interrupted run still leaves a usable file; rerunning resumes from the cache.

Usage: OMP_NUM_THREADS=1 nice -n 10 python scripts/chem/label_dataset.py --n-drug-like 4000 --n-workers 1
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from andersonn.chem.labels import _write_csv, label_molecules
from andersonn.chem.sources import XTB_LABELS_CSV, load_covid_drugs, rdkit_drug_like


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-drug-like", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--n-workers", type=int, default=1)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--cache", default="cache/chem_labels.sqlite")
    ap.add_argument("--out", default=str(XTB_LABELS_CSV))
    args = ap.parse_args()

    covid = [{"name": d["name"], "smiles": d["smiles"], "source": "covid"} for d in load_covid_drugs()]
    pool = rdkit_drug_like()
    random.Random(args.seed).shuffle(pool)
    pool = pool[: args.n_drug_like]
    done: list[dict] = []
    batches = [covid] + [pool[i : i + args.chunk] for i in range(0, len(pool), args.chunk)]
    for k, batch in enumerate(batches):
        rows = label_molecules(batch, "gfn2", args.cache, scheduler=args.scheduler, n_workers=args.n_workers,
                               desc=f"chunk {k + 1}/{len(batches)}")
        for r, m in zip(rows, batch):
            r["source"] = m["source"]
        done.extend(rows)
        _write_csv(done, Path(args.out))
        n_err = sum(1 for r in done if r.get("error"))
        print(f"chunk {k + 1}/{len(batches)}: {len(done)} rows, {n_err} failed", flush=True)


if __name__ == "__main__":
    main()
