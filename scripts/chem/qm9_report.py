"""The alms-qm9 report: trained DEQs against the baselines on the same test split, and screen mode.

What it measures (each on the held-out test split, touched here once):
  * every trained run given (standard / accelerated DEQ, explicit CNN): accuracy, balanced accuracy,
    ROC-AUC, confusion matrix, Brier score, accuracy against |mu_DFT - threshold|, calibration;
    inference time and NFE;
  * the physics alone at the same DFT geometry: the MMFF94 point-charge dipole and the GFN2-xTB dipole,
    each cut where it is most accurate on the training split;
  * gradient boosting on a Morgan fingerprint + 120 RDKit descriptors, and on those plus the 3-D
    features read off the geometry-aware image;
  * screen mode: the test molecules given only as SMILES -> RDKit conformer (lowest MMFF94 of 10
    ETKDG) -> image -> model, against their DFT labels (what `andersonn screen` does).

Usage (after `andersonn train --dataset alms-qm9 ...` runs):
  OMP_NUM_THREADS=2 python scripts/chem/qm9_report.py --run accelerated=runs/qm9/accelerated \
      --run standard=runs/qm9/standard --out docs/results/qm9 --screen-mode 2000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from andersonn.chem.baselines import cut_baseline, fingerprint_features, gbm_baseline, image_geometry_features
from andersonn.data import load_dataset
from andersonn.study.metrics import accuracy_by_margin, calibration_bins, classification_metrics
from andersonn.train import load_trained

MARGIN_EDGES = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 100.0]


def predict(model, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, float, float]:
    """Probability of class 1, wall seconds, mean forward NFE per sample."""
    probs, nfe = [], 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            xb = x[i: i + batch]
            probs.append(torch.softmax(model(xb), 1)[:, 1].numpy())
            deq = getattr(model, "deq", None)
            if deq is not None and deq.last_forward is not None:
                nfe += deq.last_forward.mean_nfe * xb.shape[0]
    return np.concatenate(probs), time.perf_counter() - t0, nfe / max(1, x.shape[0])


def evaluate(prob: np.ndarray, y: np.ndarray, dft: np.ndarray, threshold: float) -> dict:
    m = classification_metrics(y, prob, class_names=["weakly polar", "strongly polar"])
    m["accuracy_by_margin"] = accuracy_by_margin((prob >= 0.5) == y, np.abs(dft - threshold), MARGIN_EDGES)
    m["calibration"] = calibration_bins(y, prob)
    return m


def strip(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "test_probability"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of a trained alms-qm9 model")
    ap.add_argument("--out", type=Path, default=Path("docs/results/qm9"))
    ap.add_argument("--screen-mode", type=int, default=0, help="test molecules to screen from SMILES (0: skip)")
    ap.add_argument("--screen-run", default="accelerated", help="the run screen mode is measured for")
    ap.add_argument("--fingerprint-train", type=int, default=0, help="training molecules for the fingerprint GBM (0: all)")
    ap.add_argument("--skip-gbm", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    ds = load_dataset("alms-qm9")
    meta = ds.meta
    thr = meta["threshold_debye"]
    refs = meta["references"]
    y_test = ds.y_test.numpy()
    dft_test = np.asarray(refs["test"]["dipole_dft"])
    results: dict = {"threshold_debye": thr, "counts": meta["counts"], "runs": {}, "baselines": {},
                     "fraction_strongly_polar_test": float(y_test.mean()),
                     "test_within_0.3_debye": float(np.mean(np.abs(dft_test - thr) < 0.3))}
    curves: dict[str, np.ndarray] = {}

    for spec in args.run:
        name, _, path = spec.partition("=")
        model, mmeta = load_trained(path)
        prob, seconds, nfe = predict(model, ds.x_test)
        summary = json.loads((Path(path) / "summary.json").read_text())
        m = evaluate(prob, y_test, dft_test, thr)
        m.update(inference_s=round(seconds, 2), inference_nfe=round(nfe, 2), params=summary["params"],
                 train_time_s=summary["train_time_s"], epochs_run=summary.get("epochs_run"),
                 chosen_epoch=summary.get("chosen_epoch"), val_accuracy=summary.get("val_accuracy"),
                 forward_nfe=summary["forward_nfe"], backward_nfe=summary["backward_nfe"],
                 solver=mmeta["config"]["solver"], arch=mmeta["config"]["arch"])
        results["runs"][name] = m
        curves[name] = prob
        print(f"{name}: test accuracy {m['accuracy']:.4f}, balanced {m['balanced_accuracy']:.4f}, AUC {m['roc_auc']:.4f}")

    y_train = ds.y_train.numpy()
    for key, label in (("dipole_mmff", "MMFF94 point-charge dipole at the DFT geometry"),
                       ("dipole_xtb", "GFN2-xTB dipole at the DFT geometry")):
        r = cut_baseline(np.asarray(refs["train"][key]), y_train, np.asarray(refs["test"][key]), y_test)
        err = np.asarray(refs["test"][key]) - dft_test
        r["test"]["accuracy_by_margin"] = accuracy_by_margin(
            ((np.asarray(refs["test"][key]) >= r["cut"]).astype(int) == y_test), np.abs(dft_test - thr), MARGIN_EDGES)
        r.update(description=label, mae_vs_dft=float(np.abs(err).mean()), mean_signed_error=float(err.mean()),
                 pearson_r=float(np.corrcoef(np.asarray(refs["test"][key]), dft_test)[0, 1]))
        results["baselines"][key] = r
        print(f"{key}: cut {r['cut']:.3f} D, test accuracy {r['test']['accuracy']:.4f}")

    if not args.skip_gbm:
        t0 = time.perf_counter()
        n_fp = args.fingerprint_train or len(y_train)
        pick = np.random.default_rng(0).permutation(len(y_train))[:n_fp]
        fp_train = fingerprint_features([refs["train"]["smiles"][i] for i in pick], scheduler=None, progress=True)
        fp_test = fingerprint_features(refs["test"]["smiles"], scheduler=None, progress=True)
        fp_s = time.perf_counter() - t0
        geo_train, geo_names = image_geometry_features(ds.x_train.numpy()[pick], meta["channels"])
        geo_test, _ = image_geometry_features(ds.x_test.numpy(), meta["channels"])
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

    if args.screen_mode and args.screen_run in dict(s.partition("=")[::2] for s in args.run):
        from andersonn.chem.screen import geometry_images
        from andersonn.parallel import map_chunks
        from functools import partial

        path = dict(s.partition("=")[::2] for s in args.run)[args.screen_run]
        model, mmeta = load_trained(path)
        n = min(args.screen_mode, len(y_test))
        pick = np.random.default_rng(1).permutation(len(y_test))[:n]
        mols = [{"name": f"qm9_{refs['test']['index'][i]}", "smiles": refs["test"]["smiles"][i]} for i in pick]
        t0 = time.perf_counter()
        size = mmeta["model"]["image_size"]
        imgs = map_chunks(partial(geometry_images, image_size=size, channels=mmeta["dataset_meta"].get("channels")),
                          mols, chunk_size=50, scheduler=None, desc="screen-mode images")
        img_s = time.perf_counter() - t0
        ok = [k for k, im in enumerate(imgs) if not isinstance(im, str)]
        x = torch.from_numpy(np.stack([imgs[k] for k in ok]))
        prob, inf_s, nfe = predict(model, x)
        yy, dd = y_test[pick][ok], dft_test[pick][ok]
        m = evaluate(prob, yy, dd, thr)
        same = classification_metrics(yy, curves[args.screen_run][pick][ok]) if args.screen_run in curves else None
        m.update(n_asked=n, n_imaged=len(ok), failures=[imgs[k] for k in range(n) if isinstance(imgs[k], str)][:20],
                 image_s=round(img_s, 1), molecules_per_s=round(n / (img_s + inf_s), 2),
                 same_molecules_at_dft_geometry=same)
        results["screen_mode"] = {args.screen_run: m}
        print(f"screen mode ({args.screen_run}, {len(ok)}/{n} imaged): accuracy {m['accuracy']:.4f}"
              + (f" vs {same['accuracy']:.4f} at the DFT geometry" if same else ""))

    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    plot(results, args.out)
    print(f"wrote {args.out / 'results.json'}")


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [(k, v) for k, v in results["runs"].items()] + [(k, v["test"]) for k, v in results["baselines"].items()
                                                             if isinstance(v, dict) and "test" in v]
    for name, m in series:
        rows = m["accuracy_by_margin"] if "accuracy_by_margin" in m else None
        if not rows:
            continue
        xs = [f"{r['low']}-{r['high'] if r['high'] < 100 else ''}" for r in rows]
        a1.plot(xs, [r["accuracy"] for r in rows], "-o", ms=3, label=name)
    a1.set_xlabel("|DFT dipole - threshold| (D)")
    a1.set_ylabel("test accuracy")
    a1.set_title("Where the errors are: accuracy against the distance from 3 D")
    a1.legend(fontsize=7)
    a1.grid(alpha=0.3)
    for name, m in results["runs"].items():
        cal = [r for r in m["calibration"] if r["n"]]
        a2.plot([r["predicted"] for r in cal], [r["observed"] for r in cal], "-o", ms=3, label=name)
    a2.plot([0, 1], [0, 1], "k--", lw=0.8)
    a2.set_xlabel("predicted P(strongly polar)")
    a2.set_ylabel("observed fraction strongly polar")
    a2.set_title("Calibration (test split)")
    a2.legend(fontsize=7)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_margin_calibration.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
