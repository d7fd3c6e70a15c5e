"""Screen mode of an alms-qm9 model, measured and recalibrated: what a chemist gets from `andersonn screen`.

The model is trained on images built at QM9's DFT geometries; a screen builds them from an RDKit
conformer (lowest MMFF94 energy of 10 ETKDG) instead, and the dipole follows the geometry. This script
images validation and test molecules exactly as the screen does (`andersonn.chem.screen.geometry_images`,
on Dask, chunk by chunk into a resumable cache), then

  * fits a probability recalibration (`andersonn.study.calibration.fit_logit_scaling`: one scale and a
    class bias on the logits) on the validation molecules only;
  * scores the test molecules once, with the model's own and with the recalibrated probabilities
    (accuracy, balanced accuracy, ROC-AUC, Brier, ECE, calibration bins, accuracy by distance from the
    threshold), beside the physics at the same conformer: the GFN2-xTB and MMFF94 dipoles read off the
    image (their pixel sums are the squared dipoles), cut where they are best on the validation molecules;
  * with --install, writes the recalibration into the model folder (`screen_calibration.json`), which
    `andersonn screen` then applies.

The default test molecules are the 2,000 of docs/results/qm9/screen_input.csv (qm9_report.py
--write-screen-input 2000), so the numbers compare with the earlier screen-mode run.

Usage (2 cores):
  OMP_NUM_THREADS=1 python scripts/chem/qm9_screen_calibration.py --n-val 2000 --n-test 2000 --install
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from andersonn.chem.baselines import cut_baseline, image_geometry_features
from andersonn.chem.image import GEOMETRY_CHANNELS, GEOMETRY_IMAGE_VERSION
from andersonn.chem.qm9 import load_qm9_images
from andersonn.chem.screen import geometry_images
from andersonn.fileio import atomic_write_text, save_npz
from andersonn.parallel import map_chunk_files
from andersonn.screening import SCREEN_CALIBRATION, shipped_model
from andersonn.study.calibration import fit_logit_scaling, softmax
from andersonn.study.metrics import threshold_task_metrics
from andersonn.train import load_trained

CHUNK = 50


def _image_chunk(item: dict) -> dict:
    """Screen-mode images of one chunk into an .npz (atomic); the record lists what failed."""
    t0 = time.perf_counter()
    built = geometry_images(item["rows"], item["size"], channels=item["channels"], hydrogens=item["hydrogens"])
    ok = [i for i, b in enumerate(built) if not isinstance(b, str)]
    failed = [{"name": item["rows"][i]["name"], "reason": b} for i, b in enumerate(built) if isinstance(b, str)]
    path = Path(item["path"])
    x = np.stack([built[i] for i in ok]) if ok else np.zeros((0, len(item["channels"]), item["size"], item["size"]), np.float32)
    save_npz(path, x=x.astype(np.float32), names=np.asarray([item["rows"][i]["name"] for i in ok], dtype=str))
    return {"path": path.name, "n": len(ok), "failed": failed, "seconds": round(time.perf_counter() - t0, 2)}


def screen_images(rows: list[dict], size: int, channels: list[str], hydrogens: str, folder: Path,
                  scheduler: str | None, n_workers: int) -> tuple[np.ndarray, list[str], list[dict], float]:
    """Images of ``rows`` ({name, smiles}) built as the screen builds them; cached chunk by chunk."""
    folder.mkdir(parents=True, exist_ok=True)
    items = {}
    for k in range(0, len(rows), CHUNK):
        part = rows[k: k + CHUNK]
        digest = hashlib.sha1("\n".join(f"{r['name']},{r['smiles']}" for r in part).encode()).hexdigest()[:12]
        items[f"chunk_{digest}"] = {"rows": part, "size": size, "channels": channels, "hydrogens": hydrogens,
                                    "path": str(folder / f"chunk_{digest}.npz")}
    t0 = time.perf_counter()
    records = map_chunk_files(_image_chunk, items, folder, scheduler=scheduler, n_workers=n_workers,
                              desc="screen-mode images")
    wall = time.perf_counter() - t0
    xs, names, failed = [], [], []
    for key in items:
        rec = records[key]
        if "error" in rec:
            raise RuntimeError(f"chunk {key} failed: {rec['error']}")
        z = np.load(folder / rec["path"])
        xs.append(z["x"])
        names.extend(z["names"].tolist())
        failed.extend(rec["failed"])
    return np.concatenate(xs), names, failed, wall


def logits_of(model: torch.nn.Module, x: np.ndarray, batch: int = 500) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i: i + batch])).double().numpy())
    return np.concatenate(out)


def score(y: np.ndarray, prob: np.ndarray, dft: np.ndarray, thr: float) -> dict:
    return threshold_task_metrics(y, prob, dft, thr, class_names=["weakly polar", "strongly polar"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="alms-qm9 run folder (default: the shipped model)")
    ap.add_argument("--n-val", type=int, default=2000, help="validation molecules to fit the recalibration on")
    ap.add_argument("--n-test", type=int, default=2000, help="test molecules to score (the screen_input.csv draw)")
    ap.add_argument("--seed", type=int, default=0, help="draw of the validation molecules")
    ap.add_argument("--n-workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "andersonn" / "qm9_screen_images")
    ap.add_argument("--out", type=Path, default=Path("docs/results/qm9/screen_calibration.json"))
    ap.add_argument("--install", action="store_true", help=f"write {SCREEN_CALIBRATION} into the model folder")
    args = ap.parse_args()
    if min(args.n_val, args.n_test) < 1:
        print("error: --n-val and --n-test must be >= 1", file=sys.stderr)
        return 2
    run_dir = args.model or shipped_model("molecules")
    model, meta = load_trained(run_dir)
    model.eval()
    dmeta = meta["dataset_meta"]
    size, hydrogens = meta["model"]["image_size"], dmeta.get("hydrogens", "folded")
    channels = dmeta.get("channels") or list(GEOMETRY_CHANNELS)
    thr = float(dmeta.get("threshold_debye", 3.0))

    ds = load_qm9_images(size=size, hydrogens=hydrogens, progress=False)
    refs = ds["meta"]["references"]
    val_pick = np.sort(np.random.default_rng(args.seed).permutation(len(ds["y_val"]))[: args.n_val])
    test_pick = np.sort(np.random.default_rng(1).permutation(len(ds["y_test"]))[: args.n_test])  # qm9_report's draw
    # the image version is in the key: images built by an older definition are not reused
    tag = hashlib.sha1(json.dumps([size, hydrogens, channels, GEOMETRY_IMAGE_VERSION]).encode()).hexdigest()[:8]
    weights_sha1 = hashlib.sha1((Path(run_dir) / "model.safetensors").read_bytes()).hexdigest()
    out: dict = {"model": str(run_dir), "model_sha1": weights_sha1, "threshold_debye": thr, "structure": "lowest-MMFF94 of 10 RDKit ETKDGv3 conformers",
                 "fitted_on": "validation split", "scored_on": "test split (once)"}
    parts = {}
    for split, pick in (("val", val_pick), ("test", test_pick)):
        rows = [{"name": f"qm9_{refs[split]['index'][i]}", "smiles": refs[split]["smiles"][i]} for i in pick]
        x, names, failed, wall = screen_images(rows, size, channels, hydrogens, args.cache / f"{tag}_{split}",
                                               args.scheduler, args.n_workers)
        pos = {f"qm9_{refs[split]['index'][i]}": i for i in pick}
        ii = np.array([pos[n] for n in names])
        dft = np.asarray(refs[split]["dipole_dft"])[ii]
        parts[split] = {"x": x, "y": (dft >= thr).astype(int), "dft": dft, "ii": ii}
        out[f"{split}_molecules"] = {"asked": len(rows), "imaged": len(names), "failed": len(failed),
                                     "failures": failed, "image_wall_s_this_run": round(wall, 1)}
        print(f"{split}: {len(names)} imaged, {len(failed)} failed ({wall:.0f} s)")

    val_logits = logits_of(model, parts["val"]["x"])
    scaling = fit_logit_scaling(val_logits, parts["val"]["y"], fitted_on={
        "n": int(len(parts["val"]["y"])), "split": "validation", "seed": args.seed,
        "structure": out["structure"], "script": "scripts/chem/qm9_screen_calibration.py", "model_sha1": weights_sha1})
    out["scaling"] = {"scale": scaling.scale, "bias": list(scaling.bias), "fitted_on": scaling.fitted_on}
    test = parts["test"]
    test_logits = logits_of(model, test["x"])
    raw = softmax(test_logits)[:, 1]
    cal = scaling.probabilities(test_logits)[:, 1]
    out["test"] = {"model_probabilities": score(test["y"], raw, test["dft"], thr),
                   "recalibrated": score(test["y"], cal, test["dft"], thr)}
    # the same test molecules imaged at their DFT geometry, for reference
    dft_geom = softmax(logits_of(model, ds["x_test"][test["ii"]]))[:, 1]
    out["test"]["same_molecules_at_dft_geometry"] = {"accuracy": float(((dft_geom >= 0.5) == test["y"]).mean())}
    # the physics read off the same images: |mu| of each charge model (its dipole_dot pixels sum to |mu|^2)
    f_val, names = image_geometry_features(parts["val"]["x"], channels)
    f_test, _ = image_geometry_features(test["x"], channels)
    for charge in ("gfn2", "mmff"):
        if f"mu_{charge}" not in names:
            continue
        j = names.index(f"mu_{charge}")
        r = cut_baseline(f_val[:, j], parts["val"]["y"], f_test[:, j], test["y"])
        out["test"][f"physics_{charge}_at_conformer"] = {
            "cut_debye_fitted_on_val": r["cut"], "accuracy": r["test"]["accuracy"],
            "balanced_accuracy": r["test"]["balanced_accuracy"],
            "accuracy_at_threshold": float(((f_test[:, j] >= thr) == test["y"]).mean())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(out, indent=1) + "\n", args.out)
    r, c = out["test"]["model_probabilities"], out["test"]["recalibrated"]
    print(f"test ({len(test['y'])}): accuracy {r['accuracy']:.4f} -> {c['accuracy']:.4f}, ECE {r['ece']:.3f} -> {c['ece']:.3f}, "
          f"Brier {r['brier']:.3f} -> {c['brier']:.3f}; scale {scaling.scale:.3f}, bias {scaling.bias[1]:+.3f}")
    if args.install:
        scaling.save(Path(run_dir) / SCREEN_CALIBRATION)
        print(f"wrote {Path(run_dir) / SCREEN_CALIBRATION}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
