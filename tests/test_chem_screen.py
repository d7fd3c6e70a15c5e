"""Screening a small file with a bad line and an oversize molecule."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from andersonn.chem.screen import format_screen_table, screen_file


def _carbonyl_model(images: torch.Tensor) -> torch.Tensor:
    """A fixed 'model': more O/N atoms -> more likely strongly polar (deterministic, in [0,1])."""
    on = images[:, 3].diagonal(dim1=1, dim2=2).sum(1) + images[:, 2].diagonal(dim1=1, dim2=2).sum(1)
    p = torch.sigmoid(2.0 * (on - 1.5))
    return torch.stack([1 - p, p], dim=1)


def test_screen_csv_with_bad_line(tmp_path: Path) -> None:
    f = tmp_path / "drugs.csv"
    f.write_text(
        "name,smiles\n"
        "hexane,CCCCCC\n"
        "favipiravir,NC(=O)c1nc(F)cnc1O\n"
        "typo,C1CC(\n"
        "long,CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC\n"
    )
    log = io.StringIO()
    out = tmp_path / "pred.csv"
    rows = screen_file(f, _carbonyl_model, output_path=out, log=log)
    assert [r["line"] for r in rows] == [2, 3, 4, 5]
    assert rows[0]["predicted_class"] == "weakly polar" and rows[1]["predicted_class"] == "strongly polar"
    assert 0.5 <= rows[1]["probability"] <= 1.0
    assert "RDKit could not parse" in rows[2]["error"] and "exceed the image size" in rows[3]["error"]
    assert f"{f}:4: skipped 'typo'" in log.getvalue() and ":5:" in log.getvalue()
    written = list(csv.DictReader(out.open()))
    assert [w["name"] for w in written] == ["hexane", "favipiravir", "typo", "long"]
    table = format_screen_table(rows)
    assert "ERROR" in table and "favipiravir" in table


def test_screen_smiles_file_with_labels(tmp_path: Path) -> None:
    f = tmp_path / "m.smi"
    f.write_text("CC#N acetonitrile\nnot_a_smiles broken\nc1ccccc1 benzene\n")
    rows = screen_file(f, _carbonyl_model, with_labels=True, cache_path=tmp_path / "c.sqlite", log=None)
    assert rows[1]["line"] == 2 and "error" in rows[1]
    assert rows[0]["xtb_class"] == "strongly polar" and rows[0]["xtb_dipole_debye"] > 3.0
    assert rows[2]["xtb_class"] == "weakly polar" and rows[2]["xtb_dipole_debye"] < 0.1
