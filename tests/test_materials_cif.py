"""Bad CIFs give a CifError naming the file and the reason."""

import pytest

pytest.importorskip("pymatgen")

from andersonn.materials.cif import CifError, read_structure  # noqa: E402
from andersonn.materials.examples import example_cif_path  # noqa: E402


def test_corrupt_cif_error_names_file_and_reason():
    path = example_cif_path("corrupt")
    with pytest.raises(CifError) as info:
        read_structure(path)
    assert info.value.path == str(path)
    assert info.value.reason.startswith("unreadable CIF")
    assert "corrupt.cif" in str(info.value)


def test_disordered_site_rejected():
    with pytest.raises(CifError, match="disordered: partial or mixed occupancy"):
        read_structure(example_cif_path("disordered"))


def test_overlapping_atoms_rejected(tmp_path):
    text = example_cif_path("chain").read_text().replace("O1 O 0.55", "O1 O 0.10")  # 0.14 A apart
    path = tmp_path / "overlap.cif"
    path.write_text(text)
    with pytest.raises(CifError, match="overlapping atoms C#0-O#1 at 0.14 A"):
        read_structure(path)


@pytest.mark.parametrize("content, reason", [(None, "file not found"), ("", "empty file"),
                                             ("  \n", "empty file")])
def test_missing_or_empty(tmp_path, content, reason):
    path = tmp_path / "x.cif"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CifError) as info:
        read_structure(path)
    assert info.value.reason == reason and str(path) in str(info.value)


def test_cif_error_pickles():  # errors travel back from Dask workers
    import pickle

    e = pickle.loads(pickle.dumps(CifError("a.cif", "empty file")))
    assert (e.path, e.reason, str(e)) == ("a.cif", "empty file", "a.cif: empty file")
