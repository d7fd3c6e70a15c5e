#!/usr/bin/env python
"""Build (or load) the alms-pores image cache and measure the baselines on its split.

Usage::

    OMP_NUM_THREADS=1 python scripts/materials/build_pores.py \
        [--cache-dir cache/alms-pores] [--image-size 32] [--mode balanced|full] \
        [--max-structures N] [--seed 0] [--scheduler synchronous] [--out reports/alms-pores.json]

``--mode full`` takes every CoRE MOF 2019 ASR structure (natural balance,
train/val/test 80/10/10); ``--max-structures`` defaults to 2000 in the
balanced mode and to all in the full mode.  Prints the data set summary (class
balance, skipped structures by reason, build time per structure) and the four
baselines of :mod:`andersonn.materials.baseline` (composition/density GBM,
Zeo++-without-PLD GBM, our PLD estimate cut at the edges, raw and shifted),
and writes both to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from andersonn.materials.baseline import all_baselines
from andersonn.materials.pores import MODES, default_cache_dir, load_pores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--mode", choices=MODES, default="balanced")
    ap.add_argument("--max-structures", type=int, default=None,
                    help="default: 2000 (balanced) or all (full); 0 for every structure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scheduler", default=None, help="None (local Dask), 'synchronous' or tcp://...")
    ap.add_argument("--out", type=Path, default=Path("reports/alms-pores.json"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = load_pores(args.cache_dir, args.image_size, args.max_structures, args.seed, args.scheduler,
                      mode=args.mode)
    wall = time.perf_counter() - t0
    meta = data["meta"]
    baselines = all_baselines(data, seed=args.seed)
    summary = {
        "load_wall_seconds": wall,
        **{k: list(data[k].shape) for k in ("x_train", "x_val", "x_test") if k in data},
        **{k: v for k, v in meta.items() if not k.startswith("refcodes_")},
        "baselines": baselines,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    short = {k: v for k, v in summary.items() if k not in ("skipped", "bins", "sources")}
    short["baselines"] = {name: {k: v for k, v in b.items() if k not in ("features", "metrics")}
                          for name, b in baselines.items()}
    print(json.dumps(short, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
