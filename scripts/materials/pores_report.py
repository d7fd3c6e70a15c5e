"""The alms-pores report: trained models against the baselines on the natural-balance test split of all of CoRE MOF 2019.

What it measures, each on the held-out split (the test split is touched once, for finished runs):
  * every trained run given (standard / accelerated DEQ, explicit CNN, channel ablations): accuracy,
    balanced accuracy, ROC-AUC (one-vs-rest), confusion matrix, per-class precision and recall, the
    DNA/RNA class (PLD >= 10 A) on its own, accuracy against the distance of the Zeo++ PLD from the
    nearest class edge, top-label calibration, inference time and NFE;
  * the baselines of andersonn.materials.baseline on the same split: composition/density GBM, GBM on
    every Zeo++ descriptor but PLD (the one to beat), and our own PLD estimate cut at the class edges;
  * standard against accelerated: training and inference speedup, compute saved (NFE).

Usage (after `andersonn train --dataset alms-pores --dataset-option mode=full ...` runs):
  OMP_NUM_THREADS=2 python scripts/materials/pores_report.py --image-size 16 \\
      --run accelerated=runs/pores/accelerated --run standard=runs/pores/standard \\
      --run explicit=runs/pores/explicit --out docs/results/pores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from andersonn.fileio import write_csv
from andersonn.study.report import plot_accuracy_vs_epoch
from andersonn.materials.baseline import LABEL_COLUMN, all_baselines
from andersonn.materials.channels import CHANNELS
from andersonn.materials.coremof import coremof_table
from andersonn.materials.pores import CLASS_NAMES, PLD_EDGES, default_cache_dir, load_pores
from andersonn.study.evaluation import predict_proba, solver_comparison
from andersonn.study.metrics import accuracy_by_margin, calibration_bins, classification_metrics
from andersonn.train import load_trained

#: bins of |PLD - nearest class edge| (A)
MARGIN_EDGES = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 100.0]
NUCLEIC = CLASS_NAMES[-1]


def edge_margin(pld: np.ndarray) -> np.ndarray:
    """Distance (A) of each PLD from the nearest class edge."""
    return np.min(np.abs(pld[:, None] - np.asarray(PLD_EDGES, dtype=float)[None, :]), axis=1)


def evaluate(prob: np.ndarray, y: np.ndarray, pld: np.ndarray) -> dict:
    m = classification_metrics(y, prob, class_names=CLASS_NAMES)
    pred = prob.argmax(1)
    m["nucleic_acid"] = m["per_class"][NUCLEIC]
    m["accuracy_by_edge_distance"] = accuracy_by_margin(pred == y, edge_margin(pld), MARGIN_EDGES)
    m["calibration_top_label"] = calibration_bins((pred == y).astype(int), prob.max(1))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of a trained alms-pores model")
    ap.add_argument("--out", type=Path, default=Path("docs/results/pores"))
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="split scored: test for finished runs (once), val for interim models of unfinished runs")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="time inference this many times per run (median and range reported)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_pores(args.cache_dir, args.image_size, None, 0, None, mode="full")
    meta = data["meta"]
    split = args.split
    x_all = torch.as_tensor(data[f"x_{split}"])
    y = data[f"y_{split}"]
    table = coremof_table()
    pld = np.array([float(table[r][LABEL_COLUMN]) for r in meta[f"refcodes_{split}"]])
    results: dict = {
        "split": split, "image_size": args.image_size, "bins": meta["bins"], "class_balance": meta["class_balance"],
        "n_selected": meta["n_selected"], "n_used": meta["n_used"], "n_skipped": meta["n_skipped"],
        "skipped_reasons": meta["skipped_reasons"], "build_seconds_per_structure": meta["build_seconds_per_structure"],
        "majority_accuracy": float(np.bincount(y).max() / len(y)),
        "within_0.5_A_of_an_edge": float(np.mean(edge_margin(pld) < 0.5)),
        "runs": {}, "baselines": {},
    }
    for spec in args.run:
        name, _, path = spec.partition("=")
        model, mmeta = load_trained(path)
        keep = [CHANNELS.index(c) for c in mmeta["dataset_meta"]["channels"]]
        x_run = x_all[:, keep]
        timed = [predict_proba(model, x_run) for _ in range(max(1, args.repeat))]
        prob, _, nfe = timed[0]
        times = sorted(t[1] for t in timed)
        seconds = float(np.median(times))
        run = Path(path)
        summary = json.loads((run / ("summary.json" if (run / "summary.json").exists() else "interim.json")).read_text())
        epochs = json.loads((run / "metrics.json").read_text())
        m = evaluate(prob, y, pld)
        cfg = mmeta["config"]
        m.update(inference_s=round(seconds, 2), inference_s_range=[round(times[0], 2), round(times[-1], 2)],
                 inference_repeats=len(times), inference_nfe=round(nfe, 2), params=summary["params"],
                 channels=mmeta["dataset_meta"]["channels"], train_time_s=summary["train_time_s"],
                 epochs_run=summary.get("epochs_run", summary.get("epochs_done")), chosen_epoch=summary.get("chosen_epoch"),
                 val_accuracy=summary.get("val_accuracy"), interim=not (run / "summary.json").exists(),
                 forward_nfe=summary.get("forward_nfe"), backward_nfe=summary.get("backward_nfe"),
                 epoch_times_s=[r["epoch_time_s"] for r in epochs], val_accuracy_by_epoch=[r.get("val_accuracy") for r in epochs],
                 forward_nfe_by_epoch=[r["forward_nfe"] for r in epochs],
                 jacobian_by_epoch=[r.get("jacobian_fro2") for r in epochs],
                 solver=cfg["solver"], arch=cfg["arch"], jacobian_reg=cfg.get("jacobian_reg", 0.0))
        results["runs"][name] = m
        print(f"{name}: {split} accuracy {m['accuracy']:.4f}, balanced {m['balanced_accuracy']:.4f}, "
              f">=10 A precision {m['nucleic_acid']['precision']:.3f} recall {m['nucleic_acid']['recall']:.3f}, "
              f"inference {seconds:.1f} s NFE {nfe:.1f}")

    if {"standard", "accelerated"} <= set(results["runs"]):
        results["comparison"] = solver_comparison(
            results["runs"]["standard"], results["runs"]["accelerated"],
            "both trained side by side, one thread each, on the same 2-core machine; inference timed in this "
            "process, one run after the other, median of --repeat passes over the split")
        print(f"comparison: {results['comparison']}")

    if {"accelerated", "accelerated_nojac"} <= set(results["runs"]):
        j_, n_ = results["runs"]["accelerated"], results["runs"]["accelerated_nojac"]
        results["jacobian_penalty"] = {
            "weight": j_["jacobian_reg"], "without": n_["jacobian_reg"],
            "speedup_train": n_["train_time_s"] / j_["train_time_s"],
            "speedup_inference": n_["inference_s"] / j_["inference_s"],
            "train_nfe_per_step": {"with": j_["forward_nfe"] + j_["backward_nfe"], "without": n_["forward_nfe"] + n_["backward_nfe"]},
            "inference_nfe": {"with": j_["inference_nfe"], "without": n_["inference_nfe"]},
            "accuracy_difference": j_["accuracy"] - n_["accuracy"],
            "val_accuracy": {"with": j_["val_accuracy"], "without": n_["val_accuracy"]},
            "note": "both Anderson, same settings but --jacobian-reg; the run without it trained on one thread "
                    "beside other single-thread runs, as the others did",
        }
        print(f"jacobian penalty: {results['jacobian_penalty']}")

    if not args.skip_baselines:
        if split != "test":
            raise SystemExit("the baselines are scored on the test split only")
        for name, b in all_baselines(data, seed=0).items():
            b = {k: v for k, v in b.items() if k != "features" or len(v) < 40}
            results["baselines"][name] = b
            print(f"baseline {name}: accuracy {b['accuracy']:.4f}, balanced {b['balanced_accuracy']:.4f}")

    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    write_table(results, args.out / "results_table.csv")
    plot(results, args.out)
    print(f"wrote {args.out / 'results.json'}")


def write_table(results: dict, path: Path) -> None:
    rows = []
    for name, m in results["runs"].items():
        rows.append({"model": name, "kind": m["arch"] + (f"/{m['solver']}" if m["arch"] == "deq" else ""),
                     "channels": len(m["channels"]), "accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"],
                     "nucleic_precision": m["nucleic_acid"]["precision"], "nucleic_recall": m["nucleic_acid"]["recall"],
                     "train_time_s": m["train_time_s"], "inference_s": m["inference_s"], "inference_nfe": m["inference_nfe"]})
    for name, b in results["baselines"].items():
        rows.append({"model": f"baseline:{name}", "kind": "baseline", "channels": "", "accuracy": b["accuracy"],
                     "balanced_accuracy": b["balanced_accuracy"],
                     "nucleic_precision": b.get("nucleic_acid", {}).get("precision"),
                     "nucleic_recall": b.get("nucleic_acid", {}).get("recall"),
                     "train_time_s": "", "inference_s": "", "inference_nfe": ""})
    write_csv(rows, path, None if rows else ["model"])


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    if not runs:
        return
    main_run = "accelerated" if "accelerated" in runs else next(iter(runs))
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(17, 4.8))
    cm = np.array(runs[main_run]["confusion_matrix"])
    a0.imshow(cm / cm.sum(1, keepdims=True), cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            a0.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=9,
                    color="white" if cm[i, j] > 0.5 * cm[i].sum() else "black")
    ticks = [f"{n}\n{b['pld_min']:g}-{b['pld_max']:g} A" if b["pld_max"] is not None else f"{n}\n>= {b['pld_min']:g} A"
             for n, b in zip(CLASS_NAMES, results["bins"])]
    a0.set_xticks(range(len(ticks)), ticks, fontsize=7)
    a0.set_yticks(range(len(ticks)), ticks, fontsize=7)
    a0.set_xlabel("predicted")
    a0.set_ylabel("Zeo++ class")
    a0.set_title(f"{main_run}: confusion matrix ({results['split']}, row-normalised colour)")
    for name, m in runs.items():
        rows = m["accuracy_by_edge_distance"]
        xs = [f"{r['low']}-{r['high'] if r['high'] < 100 else ''}" for r in rows]
        a1.plot(xs, [r["accuracy"] for r in rows], "-o", ms=3, label=name)
    a1.set_xlabel("|Zeo++ PLD - nearest class edge| (A)")
    a1.set_ylabel(f"{results['split']} accuracy")
    a1.set_title("Where the errors are: distance from a class edge")
    a1.legend(fontsize=7)
    a1.grid(alpha=0.3)
    for name, m in runs.items():
        cal = [r for r in m["calibration_top_label"] if r["n"]]
        a2.plot([r["predicted"] for r in cal], [r["observed"] for r in cal], "-o", ms=3, label=name)
    a2.plot([0, 1], [0, 1], "k--", lw=0.8)
    a2.set_xlabel("predicted probability of the predicted class")
    a2.set_ylabel("observed accuracy")
    a2.set_title("Top-label calibration")
    a2.legend(fontsize=7)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "confusion_margin_calibration.png", dpi=110)
    plt.close(fig)

    plot_accuracy_vs_epoch(runs, out / "accuracy_vs_epoch.png", title="alms-pores: accuracy vs epoch",
                           training_note=", one thread each")


if __name__ == "__main__":
    main()
