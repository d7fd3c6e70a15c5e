"""The alms-qm9 report: trained DEQs against the baselines on the same test split, and screen mode.

What it measures (each on the held-out test split, touched here once):
  * every trained run given (standard / accelerated DEQ, explicit CNN): accuracy, balanced accuracy,
    ROC-AUC, confusion matrix, Brier score, accuracy against |mu_DFT - threshold|, calibration;
    inference time and NFE;
  * the physics alone at the same DFT geometry: the MMFF94 point-charge dipole and the GFN2-xTB dipole,
    each cut where it is most accurate on the training split;
  * gradient boosting on a Morgan fingerprint + 120 RDKit descriptors, and on those plus the 3-D
    features read off the geometry-aware image;
  * screen mode: test molecules given only as SMILES to `andersonn screen` (RDKit conformer, lowest
    MMFF94 of 10 ETKDG -> image -> model), against their DFT labels.

Usage (after `andersonn train --dataset alms-qm9 ...` runs):
  python scripts/chem/qm9_report.py --out docs/results/qm9 --write-screen-input 10000
  andersonn screen docs/results/qm9/screen_input.csv --model runs/qm9/accelerated --out screen_preds.csv
  OMP_NUM_THREADS=2 python scripts/chem/qm9_report.py --run accelerated=runs/qm9/accelerated \
      --run standard=runs/qm9/standard --out docs/results/qm9 --screen-predictions screen_preds.csv
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from andersonn.chem.baselines import cut_baseline, fingerprint_features, gbm_baseline, image_geometry_features
from andersonn.data import load_dataset
from andersonn.study.evaluation import score_trained_run, solver_comparison
from andersonn.study.report import plot_threshold_report
from andersonn.study.metrics import MARGIN_EDGES, accuracy_by_margin, classification_metrics, threshold_task_metrics
from andersonn.fileio import write_csv

def evaluate(prob: np.ndarray, y: np.ndarray, dft: np.ndarray, threshold: float) -> dict:
    return threshold_task_metrics(y, prob, dft, threshold, class_names=["weakly polar", "strongly polar"])


def strip(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "test_probability"}


def fingerprints(refs: dict, pick: np.ndarray, cache: Path | None, split: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Fingerprint features of the picked training molecules and of the validation and test splits
    (cached in an .npz); returns those of ``split``."""
    if cache is not None and cache.exists():
        z = np.load(cache)
        if np.array_equal(z["pick"], pick):
            return z["train"], z[split], float(z["seconds"])
    t0 = time.perf_counter()
    feats = {"train": fingerprint_features([refs["train"]["smiles"][i] for i in pick], scheduler="synchronous", progress=True)}
    for name in ("val", "test"):
        feats[name] = fingerprint_features(refs[name]["smiles"], scheduler="synchronous", progress=True)
    seconds = time.perf_counter() - t0
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, pick=pick, seconds=seconds, **feats)
    return feats["train"], feats[split], seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of a trained alms-qm9 model")
    ap.add_argument("--out", type=Path, default=Path("docs/results/qm9"))
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="split scored: test for finished runs (once), val for interim models of unfinished runs")
    ap.add_argument("--write-screen-input", type=int, default=0,
                    help="write N random test molecules (name,smiles) to OUT/screen_input.csv for `andersonn screen`, then stop")
    ap.add_argument("--screen-predictions", type=Path, help="`andersonn screen --out` CSV of those molecules")
    ap.add_argument("--screen-timing", type=Path, help="JSON with the screen command's wall time")
    ap.add_argument("--screen-run", default="accelerated", help="the run the screen predictions came from")
    ap.add_argument("--fingerprint-train", type=int, default=0, help="training molecules for the fingerprint GBM (0: all)")
    ap.add_argument("--skip-gbm", action="store_true")
    ap.add_argument("--features-cache", type=Path, help="reuse / write the fingerprint features here (.npz)")
    ap.add_argument("--only-features", action="store_true", help="compute the fingerprint features and stop")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N molecules of the split (a smoke test)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    ds = load_dataset("alms-qm9")
    meta = ds.meta
    thr = meta["threshold_debye"]
    refs = meta["references"]
    # The split scored: "test" for a finished run (touched once), "val" for an interim model.
    split = args.split
    x_eval = ds.x_test if split == "test" else ds.x_val
    y_test = (ds.y_test if split == "test" else ds.y_val).numpy()
    if args.limit:
        x_eval, y_test = x_eval[: args.limit], y_test[: args.limit]
        refs = {name: {k: v[: args.limit] for k, v in part.items()} for name, part in refs.items()}
    dft_test = np.asarray(refs[split]["dipole_dft"])
    results: dict = {"split": split, "threshold_debye": thr, "positive_class": "strongly polar",
                     "training_note": ", one thread each", "counts": meta["counts"], "runs": {}, "baselines": {},
                     "fraction_strongly_polar": float(y_test.mean()),
                     "within_0.3_debye": float(np.mean(np.abs(dft_test - thr) < 0.3))}
    curves: dict[str, np.ndarray] = {}
    if args.only_features:
        n_fp = args.fingerprint_train or len(ds.y_train)
        pick = np.random.default_rng(0).permutation(len(ds.y_train))[:n_fp]
        fingerprints(refs, pick, args.features_cache, split)
        print(f"fingerprints of {n_fp} training and {len(y_test)} test molecules -> {args.features_cache}")
        return
    if args.write_screen_input:
        pick = np.sort(np.random.default_rng(1).permutation(len(y_test))[: args.write_screen_input])
        write_csv([{"name": f"qm9_{refs[split]['index'][i]}", "smiles": refs[split]["smiles"][i]} for i in pick],
                  args.out / "screen_input.csv")
        print(f"wrote {args.out / 'screen_input.csv'} ({len(pick)} test molecules)")
        return

    for spec in args.run:
        name, _, path = spec.partition("=")
        m, prob = score_trained_run(path, x_eval, y_test, dft_test, thr, class_names=["weakly polar", "strongly polar"])
        results["runs"][name] = m
        curves[name] = prob
        print(f"{name}: test accuracy {m['accuracy']:.4f}, balanced {m['balanced_accuracy']:.4f}, AUC {m['roc_auc']:.4f}")

    if {"standard", "accelerated"} <= set(results["runs"]):
        results["comparison"] = solver_comparison(
            results["runs"]["standard"], results["runs"]["accelerated"],
            "both trained side by side, one thread each, on the same 2-core machine")
        print(f"comparison: {results['comparison']}")

    y_train = ds.y_train.numpy()[: args.limit or None]
    for key, label in (("dipole_mmff", "MMFF94 point-charge dipole at the DFT geometry"),
                       ("dipole_xtb", "GFN2-xTB dipole at the DFT geometry")):
        value = np.asarray(refs[split][key])
        r = cut_baseline(np.asarray(refs["train"][key]), y_train, value, y_test)
        err = value - dft_test
        r["test"]["accuracy_by_margin"] = accuracy_by_margin(
            ((value >= r["cut"]).astype(int) == y_test), np.abs(dft_test - thr), MARGIN_EDGES)
        r.update(description=label, mae_vs_dft=float(np.abs(err).mean()), mean_signed_error=float(err.mean()),
                 pearson_r=float(np.corrcoef(value, dft_test)[0, 1]))
        results["baselines"][key] = r
        print(f"{key}: cut {r['cut']:.3f} D, test accuracy {r['test']['accuracy']:.4f}")

    if not args.skip_gbm:
        n_fp = args.fingerprint_train or len(y_train)
        pick = np.random.default_rng(0).permutation(len(y_train))[:n_fp]
        fp_train, fp_test, fp_s = fingerprints(refs, pick, args.features_cache, split)
        geo_train, geo_names = image_geometry_features(ds.x_train.numpy()[: args.limit or None][pick], meta["channels"])
        geo_test, _ = image_geometry_features(x_eval.numpy(), meta["channels"])
        for key, (xtr, xte, label) in {
            "gbm_fingerprint": (fp_train, fp_test, "GBM on Morgan (r=2, 1024 bits) + 120 RDKit 2-D descriptors"),
            "gbm_fingerprint_3d": (np.hstack([fp_train, geo_train]), np.hstack([fp_test, geo_test]),
                                   "GBM on the 2-D features + rotation-invariant 3-D features of the image: " + ", ".join(geo_names)),
        }.items():
            t1 = time.perf_counter()
            r = gbm_baseline(xtr, y_train[pick], xte, y_test)
            prob = r.pop("test_probability")
            r["test"] = evaluate(prob, y_test, dft_test, thr)
            r.update(description=label, fit_s=round(time.perf_counter() - t1, 1))
            results["baselines"][key] = r
            curves[key] = prob
            print(f"{key}: test accuracy {r['test']['accuracy']:.4f} ({r['n_train']} training molecules)")
        results["baselines"]["fingerprint_seconds"] = round(fp_s, 1)

    if args.screen_predictions:
        # `andersonn screen` output for test molecules named qm9_<index> (see --write-screen-input)
        import csv

        pos = {f"qm9_{k}": i for i, k in enumerate(refs[split]["index"])}
        with open(args.screen_predictions, newline="") as fh:
            rows = [r for r in csv.DictReader(fh)]
        ok = [r for r in rows if not r.get("error")]
        ii = np.array([pos[r["name"]] for r in ok])
        prob = np.array([float(r["p_strongly_polar"]) for r in ok])
        m = evaluate(prob, y_test[ii], dft_test[ii], thr)
        run = args.screen_run
        if run in curves:
            m["same_molecules_at_dft_geometry"] = classification_metrics(y_test[ii], curves[run][ii])
        timing = json.loads(Path(args.screen_timing).read_text()) if args.screen_timing else {}
        m.update(n_asked=len(rows), n_imaged=len(ok), failures=[(r["name"], r["error"]) for r in rows if r.get("error")][:50],
                 command_timing=timing)
        results["screen_mode"] = {run: m}
        print(f"screen mode ({run}, {len(ok)}/{len(rows)} imaged): accuracy {m['accuracy']:.4f}"
              + (f" vs {m['same_molecules_at_dft_geometry']['accuracy']:.4f} at the DFT geometry"
                 if "same_molecules_at_dft_geometry" in m else ""))

    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    plot_threshold_report(results, args.out, margin_label="|DFT dipole - threshold| (D)")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
