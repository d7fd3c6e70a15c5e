"""Probes of why the alms-druglike classifiers stay at the majority class (validation split only).

The explicit CNN of the DEQ's size (`andersonn.models.explicit_classifier`, depth 1), 5 epochs of Adam at 1e-3,
batch 100, seed 0, BatchNorm recalibrated on 2,000 training images before each validation pass, under one
change of input or architecture each:

  raw        the cached images as they are
  rms        each channel divided by its RMS over the training images' occupied pixels
  rms_asinh  then asinh
  asinh      asinh of the raw values
  drop       the dipole_dot_mmff channel zeroed
  batchnorm  every GroupNorm of the block replaced by a BatchNorm2d
  sums       the head also gets the 20 per-channel pixel sums (signed log1p) and the MMFF94 point-charge
             dipole (the square root of the dipole_dot_mmff sum), through BatchNorm1d + a linear layer

Prints the validation accuracy after each epoch. The figures in docs/alms-molecules.md came from this code
run on the same arrays saved to an .npz (2026-12-02, 2 cores, 130-160 s a variant).

Usage: OMP_NUM_THREADS=2 python scripts/chem/druglike_cnn_probe.py raw rms sums
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from andersonn.chem.druglike import DRUGLIKE_CHANNELS, load_druglike_images
from andersonn.models import explicit_classifier
from andersonn.train.trainer import recalibrate_batchnorm

VARIANTS = ("raw", "rms", "rms_asinh", "asinh", "drop", "batchnorm", "sums")
DIPOLE = DRUGLIKE_CHANNELS.index("dipole_dot_mmff")


class WithSums(nn.Module):
    """A classifier whose logits also get a linear read of the image's per-channel sums."""

    def __init__(self, model: nn.Module, channels: int) -> None:
        super().__init__()
        self.model, self.bn, self.lin = model, nn.BatchNorm1d(channels + 1), nn.Linear(channels + 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = x.sum((2, 3))
        mu = torch.sqrt(sums[:, DIPOLE: DIPOLE + 1].clamp_min(0))
        g = torch.cat([torch.sign(sums) * torch.log1p(sums.abs()), mu], 1)
        return self.model(x) + self.lin(self.bn(g))


def run(variant: str, xtr, ytr, xva, yva, epochs: int = 5) -> list[float]:
    torch.manual_seed(0)
    occupied = np.abs(xtr).sum(1, keepdims=True) > 0
    rms = np.sqrt((xtr ** 2).sum((0, 2, 3)) / np.maximum(occupied.sum((0, 2, 3)), 1))
    rms[rms == 0] = 1

    def transform(x: np.ndarray) -> torch.Tensor:
        x = x.copy()
        if variant == "drop":
            x[:, DIPOLE] = 0
        if variant.startswith("rms"):
            x = x / rms[None, :, None, None]
        if variant.endswith("asinh"):
            x = np.arcsinh(x)
        return torch.as_tensor(x, dtype=torch.float32)

    Xtr, Xva, Ytr, Yva = transform(xtr), transform(xva), torch.as_tensor(ytr), torch.as_tensor(yva)
    m = explicit_classifier(in_channels=xtr.shape[1], image_size=xtr.shape[2], num_classes=2, channels=48,
                            inner_channels=64, groups=8, pool=8, depth=1)
    if variant == "batchnorm":
        for block in m.modules():
            for name, child in list(block.named_children()):
                if isinstance(child, nn.GroupNorm):
                    setattr(block, name, nn.BatchNorm2d(child.num_channels))
    if variant == "sums":
        m = WithSums(m, xtr.shape[1])
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    accuracy = []
    for _ in range(epochs):
        m.train()
        perm = torch.randperm(len(Xtr))
        for i in range(0, len(Xtr), 100):
            b = perm[i: i + 100]
            loss = nn.functional.cross_entropy(m(Xtr[b]), Ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        recalibrate_batchnorm(m, Xtr[:2000], 100, torch.device("cpu"))
        m.eval()
        with torch.no_grad():
            accuracy.append(round((m(Xva).argmax(1) == Yva).float().mean().item(), 3))
    return accuracy


def main() -> int:
    chosen = sys.argv[1:] or list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        sys.exit(f"error: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    d = load_druglike_images(progress=False)
    for v in chosen:
        t = time.perf_counter()
        acc = run(v, d["x_train"], d["y_train"], d["x_val"], d["y_val"])
        print(v, acc, f"{time.perf_counter() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
