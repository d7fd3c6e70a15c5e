"""screen_cifs: one row per file, bad files reported, probabilities from predict_fn."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pymatgen")

from andersonn.materials.examples import example_cif_path  # noqa: E402
from andersonn.materials.screen import screen_cifs  # noqa: E402


def _predict(images):
    # a fake model that depends on the image: mean atomic number channel -> logits
    z = images[:, 0].mean(dim=(1, 2))
    logits = torch.stack([z, -z, 2 * z, -2 * z], dim=1) * 10
    return torch.softmax(logits, dim=1)


def test_screen_rows_in_order_with_errors():
    paths = [example_cif_path("NaCl"), example_cif_path("corrupt"), "missing.cif",
             example_cif_path("chain")]
    rows = screen_cifs(paths, _predict, image_size=8)
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert rows[1]["error"].startswith("unreadable CIF") and rows[2]["error"] == "file not found"
    for r in (rows[0], rows[3]):
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-6
        assert r["predicted_class"] == "large-molecule"  # argmax of 2*z for z > 0
        assert r["class_index"] == 2 and r["admits"]
    assert rows[0]["formula"] == "NaCl" and rows[3]["n_bonds"] == 2


def test_screen_rejects_wrong_output_shape():
    with pytest.raises(ValueError, match="expected"):
        screen_cifs([example_cif_path("NaCl")], lambda x: torch.ones(x.shape[0], 3) / 3, image_size=8)
