#!/usr/bin/env python
"""Build (or load) the alms-pores image cache and measure the descriptor baseline.

Usage::

    OMP_NUM_THREADS=1 python scripts/materials/build_pores.py \
        [--cache-dir cache/alms-pores] [--image-size 32] [--max-structures 2000] \
        [--seed 0] [--scheduler synchronous] [--out reports/alms-pores.json]

Prints the data set summary (class balance, skipped structures by reason,
build time per structure) and the gradient-boosting baseline accuracy, and
writes both to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from andersonn.materials.baseline import descriptor_baseline
from andersonn.materials.pores import DEFAULT_MAX_STRUCTURES, default_cache_dir, load_pores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--max-structures", type=int, default=DEFAULT_MAX_STRUCTURES,
                    help="0 for every structure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scheduler", default=None, help="None (local Dask), 'synchronous' or tcp://...")
    ap.add_argument("--out", type=Path, default=Path("reports/alms-pores.json"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = load_pores(args.cache_dir, args.image_size, args.max_structures, args.seed, args.scheduler)
    wall = time.perf_counter() - t0
    meta = data["meta"]
    baseline = descriptor_baseline(data, seed=args.seed)
    summary = {
        "load_wall_seconds": wall,
        "x_train": list(data["x_train"].shape),
        "x_test": list(data["x_test"].shape),
        **{k: v for k, v in meta.items() if k not in ("refcodes_train", "refcodes_test")},
        "descriptor_baseline": baseline,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    short = {k: v for k, v in summary.items() if k not in ("skipped", "bins", "sources")}
    short["descriptor_baseline"] = {k: v for k, v in baseline.items() if k != "features"}
    print(json.dumps(short, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
