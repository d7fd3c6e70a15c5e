"""The alms-druglike report: trained DEQs against the physics and the baselines, at the labelled conformer
and in screen mode.

What it measures, on the held-out split (touched here once; --split val for interim models):
  * every trained run given (standard / accelerated DEQ, explicit CNN): accuracy, balanced accuracy,
    ROC-AUC, confusion matrix, Brier score, ECE, accuracy against |mu - threshold|, calibration; inference
    time and NFE; at the labelled conformer (the image the label belongs to) and in screen mode (the
    lowest-MMFF94 conformer `andersonn screen` images);
  * the physics alone: the MMFF94 point-charge dipole at either conformer, and the GFN2-xTB dipole at the
    screen's conformer (what xTB itself would say about the structure a screen sees), each cut where it
    is most accurate on the training split;
  * gradient boosting on a Morgan fingerprint + 120 RDKit descriptors, and on those plus the 3-D
    features read off the image;
  * the two label modes side by side: how often the lowest-conformer and the Boltzmann dipole put a
    molecule in different classes;
  * with --structure screen_mmff --label-mode lowest_ff, runs trained on the screen's conformer without xTB
    channels and labelled by that conformer's xTB dipole: the xTB cut is then the label itself (not a
    baseline), and each run is also scored against the other two label modes;
  * with --structure screen, runs trained on the screen's own images (lowest-MMFF94 conformer with its
    GFN2-xTB channels, `--dataset-option structure=screen`): training and screen mode are then one image,
    scored once (reported under both keys), and the 3-D-feature GBM sees the same xTB channels;
  * with --screen-calibration NAME, a recalibration of that run's probabilities for screen-mode images
    (`andersonn.study.calibration.fit_logit_scaling`), fitted on the validation molecules' screen-mode
    images only and scored on the held-out split's: screen_calibration.json, which
    scripts/chem/ship_molecule_model.py --screen-calibration installs beside the shipped weights.

Usage (after `andersonn train --dataset alms-druglike ...` runs):
  OMP_NUM_THREADS=2 python scripts/chem/druglike_report.py --run accelerated=runs/druglike/accelerated \
      --run standard=runs/druglike/standard --run cnn=runs/druglike/cnn --out docs/results/druglike
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from andersonn.chem.baselines import cut_baseline, fingerprint_features, gbm_baseline, image_geometry_features
from andersonn.chem.druglike import LABEL_MODES, STRUCTURES, load_druglike_images
from andersonn.fileio import atomic_write_text
from andersonn.study.evaluation import score_trained_run, solver_comparison
from andersonn.study.metrics import threshold_task_metrics
from andersonn.study.report import plot_threshold_report

CLASSES = ["weakly polar", "strongly polar"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of a trained alms-druglike model")
    ap.add_argument("--out", type=Path, default=Path("docs/results/druglike"))
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--label-mode", choices=tuple(LABEL_MODES), default="lowest")
    ap.add_argument("--structure", choices=tuple(STRUCTURES), default="label",
                    help="the images the runs were trained on (their --dataset-option structure=...)")
    ap.add_argument("--image-size", type=int, default=None, help="rows of the runs' images (default: the cached 32)")
    ap.add_argument("--labels", type=Path, default=None, help="label CSV (default: the shipped one)")
    ap.add_argument("--max-molecules", type=int, default=None, help="a seeded draw of this many (a smoke test)")
    ap.add_argument("--skip-gbm", action="store_true")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address for an image build (default: local)")
    ap.add_argument("--screen-calibration", metavar="NAME", default=None,
                    help="fit a screen-mode recalibration of run NAME on the validation split (needs --split test)")
    args = ap.parse_args()
    runs = dict(spec.partition("=")[::2] for spec in args.run)
    if args.screen_calibration is not None and (args.split != "test" or args.screen_calibration not in runs):
        ap.error("--screen-calibration NAME needs --split test and a --run NAME=DIR of that name")
    args.out.mkdir(parents=True, exist_ok=True)

    d = load_druglike_images(labels_csv=args.labels, size=args.image_size, label_mode=args.label_mode,
                             structure=args.structure, max_molecules=args.max_molecules, scheduler=args.scheduler)
    meta, split = d["meta"], args.split
    thr, refs = meta["threshold_debye"], meta["references"]
    target_key = {"lowest": "dipole_lowest", "boltzmann": "dipole_boltzmann",
                  "lowest_ff": "dipole_xtb_screen_conformer"}[args.label_mode]
    y, y_train = d[f"y_{split}"], d["y_train"]
    target = np.asarray(refs[split][target_key])
    x_eval = {"labelled_conformer": torch.as_tensor(d[f"x_{split}"]),
              "screen_mode": torch.as_tensor(d[f"x_{split}_screen"])}
    results: dict = {"split": split, "label_mode": args.label_mode, "structure": args.structure, "threshold_debye": thr,
                     "positive_class": CLASSES[1], "counts": meta["counts"], "runs": {}, "screen_mode": {},
                     "baselines": {}, "fraction_strongly_polar": float(y.mean()),
                     "fraction_same_conformer": meta["fraction_same_conformer"],
                     "within_0.3_debye": float(np.mean(np.abs(target - thr) < 0.3)),
                     "build_seconds_cpu": meta["build_seconds_cpu"], "cache_bytes": meta["cache_bytes"]}

    lo, bz = (np.asarray(refs[split][k]) for k in ("dipole_lowest", "dipole_boltzmann"))
    ff = _values(refs[split]["dipole_xtb_screen_conformer"])
    has_ff = np.isfinite(ff)
    results["label_modes"] = {
        "n": len(lo), "class_disagreement": float(np.mean((lo >= thr) != (bz >= thr))),
        "mean_abs_difference_debye": float(np.abs(lo - bz).mean()),
        "class_disagreement_lowest_ff_vs_lowest": float(np.mean((ff[has_ff] >= thr) != (lo[has_ff] >= thr))),
        "class_disagreement_lowest_ff_vs_boltzmann": float(np.mean((ff[has_ff] >= thr) != (bz[has_ff] >= thr))),
        "note": "lowest: the xTB dipole of the lowest-xTB-energy conformer; boltzmann: the RMS over the conformers; "
                "lowest_ff: the xTB dipole of the lowest-MMFF94 conformer (the screen's)",
    }
    # what each run says about the labels it was not trained on (a screen's user may want another)
    other_labels = {mode: np.asarray(v) for mode, v in (("lowest", lo), ("boltzmann", bz), ("lowest_ff", ff))
                    if mode != args.label_mode}

    for spec in args.run:
        name, _, path = spec.partition("=")
        trained_structure = _run_structure(path)
        if trained_structure != args.structure:
            ap.error(f"run {name} was trained on structure={trained_structure} images, this report is --structure {args.structure}")
        m, prob = score_trained_run(path, x_eval["labelled_conformer"], y, target, thr, class_names=CLASSES)
        results["runs"][name] = m
        s, screen_prob = (m, prob) if args.structure != "label" else score_trained_run(
            path, x_eval["screen_mode"], y, target, thr, class_names=CLASSES)
        results["screen_mode"][name] = {k: s[k] for k in ("n", "accuracy", "balanced_accuracy", "roc_auc", "brier", "ece",
                                                            "confusion_matrix", "accuracy_by_margin", "calibration")}
        pred = np.asarray(screen_prob) >= 0.5
        m["screen_mode_accuracy_against_other_labels"] = {
            mode: float(np.mean(pred[np.isfinite(v)] == (v[np.isfinite(v)] >= thr))) for mode, v in other_labels.items()}
        print(f"{name}: {split} accuracy {m['accuracy']:.4f} at the labelled conformer, "
              f"{s['accuracy']:.4f} in screen mode; balanced {m['balanced_accuracy']:.4f}, AUC {m['roc_auc']:.4f}")
    if {"standard", "accelerated"} <= set(results["runs"]):
        results["comparison"] = solver_comparison(results["runs"]["standard"], results["runs"]["accelerated"],
                                                  "trained with the same seed, split and schedule on the same machine")
        print(f"comparison: {results['comparison']}")

    for key, label in (("dipole_mmff_label_conformer", "MMFF94 point-charge dipole at the labelled conformer"),
                       ("dipole_mmff_screen_conformer", "MMFF94 point-charge dipole at the screen's conformer"),
                       ("dipole_xtb_screen_conformer", "GFN2-xTB dipole at the screen's (lowest-MMFF) conformer")):
        fit, value = _values(refs["train"][key]), _values(refs[split][key])
        if key == "dipole_xtb_screen_conformer" and args.label_mode == "lowest_ff":
            results["baselines"][key] = {"description": label, "note": "the label itself in the lowest_ff mode: "
                                         "a screen that runs this xTB single point needs no model"}
            continue
        ok_fit, ok = np.isfinite(fit), np.isfinite(value)
        r = cut_baseline(fit[ok_fit], y_train[ok_fit], value[ok], y[ok])
        r.update(description=label, n_scored=int(ok.sum()),
                 mae_vs_label=float(np.abs(value[ok] - target[ok]).mean()),
                 pearson_r=float(np.corrcoef(value[ok], target[ok])[0, 1]))
        results["baselines"][key] = r
        print(f"{key}: cut {r['cut']:.3f} D, {split} accuracy {r['test']['accuracy']:.4f}")

    if not args.skip_gbm:
        t0 = time.perf_counter()
        fp_train = fingerprint_features(refs["train"]["smiles"], progress=True)
        fp_eval = fingerprint_features(refs[split]["smiles"])
        fp_s = time.perf_counter() - t0
        geo_train, geo_names = image_geometry_features(d["x_train"], meta["channels"])
        geo_eval, _ = image_geometry_features(d[f"x_{split}"], meta["channels"])
        for key, (xtr, xte, label) in {
            "gbm_fingerprint": (fp_train, fp_eval, "GBM on Morgan (r=2, 1024 bits) + 120 RDKit 2-D descriptors"),
            "gbm_fingerprint_3d": (np.hstack([fp_train, geo_train]), np.hstack([fp_eval, geo_eval]),
                                   "GBM on the 2-D features + rotation-invariant 3-D features of the image: "
                                   + ", ".join(geo_names)),
        }.items():
            t1 = time.perf_counter()
            r = gbm_baseline(xtr, y_train, xte, y)
            prob = r.pop("test_probability")
            r["test"] = threshold_task_metrics(y, prob, target, thr, class_names=CLASSES)
            r.update(description=label, fit_s=round(time.perf_counter() - t1, 1))
            results["baselines"][key] = r
            print(f"{key}: {split} accuracy {r['test']['accuracy']:.4f}")
        results["baselines"]["fingerprint_seconds"] = round(fp_s, 1)

    if args.screen_calibration is not None:
        cal = screen_calibration(runs[args.screen_calibration], d, target, thr)
        atomic_write_text(json.dumps(cal, indent=1, default=float) + "\n", args.out / "screen_calibration.json")
        r, c = cal["test"]["model_probabilities"], cal["test"]["recalibrated"]
        print(f"screen-mode recalibration: accuracy {r['accuracy']:.4f} -> {c['accuracy']:.4f}, "
              f"ECE {r['ece']:.3f} -> {c['ece']:.3f}; scale {cal['scaling']['scale']:.3f}")
        results["screen_calibration"] = {k: cal[k] for k in ("scaling", "fitted_on", "scored_on")}

    atomic_write_text(json.dumps(results, indent=2, default=float) + "\n", args.out / "results.json")
    plot_threshold_report(results, args.out, margin_label="|xTB dipole - threshold| (D)")
    print(f"wrote {args.out / 'results.json'}")
    return 0


def _values(column: list) -> np.ndarray:
    """A reference column as floats, NaN where a molecule has no value (None)."""
    return np.array([np.nan if v is None else v for v in column], dtype=float)


def _run_structure(run_dir: str) -> str:
    """The structure a run's images showed (runs from before the option imaged the labelled conformer)."""
    meta = json.loads((Path(run_dir) / "config.json").read_text())
    return meta.get("dataset_meta", {}).get("structure", "label")


def screen_calibration(run_dir: str, d: dict, target: np.ndarray, thr: float) -> dict:
    """Recalibration of a run's probabilities for screen-mode images: fitted on the validation molecules,
    scored on the test split (the format scripts/chem/ship_molecule_model.py installs)."""
    import hashlib

    from andersonn.study.calibration import fit_logit_scaling, softmax
    from andersonn.train import load_trained

    model, _ = load_trained(run_dir)
    sha1 = hashlib.sha1((Path(run_dir) / "model.safetensors").read_bytes()).hexdigest()

    def logits(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([model(torch.as_tensor(x[i: i + 500])).double().numpy() for i in range(0, len(x), 500)])

    structure = "lowest-MMFF94 of the same 10 ETKDGv3 conformers"
    scaling = fit_logit_scaling(logits(d["x_val_screen"]), d["y_val"], fitted_on={
        "n": int(len(d["y_val"])), "split": "validation", "structure": structure,
        "script": "scripts/chem/druglike_report.py", "model_sha1": sha1})
    test_logits = logits(d["x_test_screen"])
    y = d["y_test"]
    return {"model": str(run_dir), "model_sha1": sha1, "threshold_debye": thr, "structure": structure,
            "fitted_on": "validation split", "scored_on": "test split (once)",
            "scaling": {"scale": scaling.scale, "bias": list(scaling.bias), "fitted_on": scaling.fitted_on},
            "test_molecules": {"imaged": int(len(y))},
            "test": {"model_probabilities": threshold_task_metrics(y, softmax(test_logits)[:, 1], target, thr,
                                                                   class_names=CLASSES),
                     "recalibrated": threshold_task_metrics(y, scaling.probabilities(test_logits)[:, 1], target, thr,
                                                            class_names=CLASSES)}}


if __name__ == "__main__":
    raise SystemExit(main())
