"""Tests of ponita.datasets._rmd17: both on-disk layouts, unit conversion, download and input errors."""

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ponita.datasets import (
    KCAL_PER_MOL_TO_MEV,
    RMD17_MOLECULES,
    bundled_data_dir,
    download_rmd17,
    load_rmd17,
)


def _fake_rmd17_arrays(num_frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with the keys, shapes and dtypes of an rMD17 npz file (a 3-atom molecule)."""
    rng = np.random.default_rng(seed)
    return {
        "nuclear_charges": np.array([8, 1, 1], dtype=np.uint8),  # [N]
        "coords": rng.normal(size=(num_frames, 3, 3)),  # [F, N, 3]
        "energies": rng.normal(size=num_frames) - 1000.0,  # [F]
        "forces": rng.normal(size=(num_frames, 3, 3)),  # [F, N, 3]
    }


def _write_archive_layout(root: Path, arrays: dict[str, np.ndarray], train: list[int], test: list[int]) -> None:
    """Writes ``root/rmd17/npz_data/rmd17_ethanol.npz`` and split 1 of ``root/rmd17/splits``."""
    (root / "rmd17" / "npz_data").mkdir(parents=True)
    (root / "rmd17" / "splits").mkdir(parents=True)
    np.savez(root / "rmd17" / "npz_data" / "rmd17_ethanol.npz", **arrays)
    (root / "rmd17" / "splits" / "index_train_01.csv").write_text("".join(f"{i}\n" for i in train))
    (root / "rmd17" / "splits" / "index_test_01.csv").write_text("".join(f"{i}\n" for i in test))


def test_rmd17_molecules_lists_the_ten_molecules() -> None:
    assert len(RMD17_MOLECULES) == 10
    assert "ethanol" in RMD17_MOLECULES and "salicylic" in RMD17_MOLECULES


def test_load_bundled_ethanol_has_1000_frames_in_mev() -> None:
    frames = load_rmd17("ethanol", "train")
    raw = np.load(bundled_data_dir() / "rmd17_ethanol_train_01.npz")
    assert len(frames) == 1000
    frame = frames[7]
    assert frame.z.dtype == torch.long and frame.z.tolist() == [6, 6, 8, 1, 1, 1, 1, 1, 1]
    assert frame.pos.shape == (9, 3) and frame.pos.dtype == torch.float64
    assert frame.energy.shape == (1,) and frame.energy.dtype == torch.float64
    assert frame.forces.shape == (9, 3) and frame.forces.dtype == torch.float64
    np.testing.assert_array_equal(frame.pos.numpy(), raw["coords"][7])
    assert frame.energy.item() == pytest.approx(raw["energies"][7] * 43.364, rel=1e-12)
    np.testing.assert_allclose(frame.forces.numpy(), raw["forces"][7] * 43.364, rtol=1e-12)


def test_bundled_train_and_test_frames_differ() -> None:
    train = load_rmd17("ethanol", "train")
    test = load_rmd17("ethanol", "test")
    train_energies = {frame.energy.item() for frame in train}
    assert len(test) == 1000
    assert not any(frame.energy.item() in train_energies for frame in test)


def test_kcal_per_mol_to_mev_matches_the_physical_constant() -> None:
    # 1 kcal/mol = 4184 J / N_A / e = 43.3641 meV
    assert KCAL_PER_MOL_TO_MEV == pytest.approx(4184.0 / 6.02214076e23 / 1.602176634e-19 * 1000.0, abs=1e-3)


def test_load_archive_layout_selects_split_rows(tmp_path: Path) -> None:
    arrays = _fake_rmd17_arrays(num_frames=10)
    _write_archive_layout(tmp_path, arrays, train=[9, 2, 4], test=[0, 1])
    train = load_rmd17("ethanol", "train", data_dir=tmp_path)
    test = load_rmd17("ethanol", "test", data_dir=tmp_path)
    assert len(train) == 3 and len(test) == 2
    np.testing.assert_array_equal(train[0].pos.numpy(), arrays["coords"][9])
    assert train[1].energy.item() == pytest.approx(arrays["energies"][2] * KCAL_PER_MOL_TO_MEV)
    np.testing.assert_allclose(test[1].forces.numpy(), arrays["forces"][1] * KCAL_PER_MOL_TO_MEV)
    assert train[0].z.tolist() == [8, 1, 1]


def test_load_prefers_pre_split_file_over_archive(tmp_path: Path) -> None:
    _write_archive_layout(tmp_path, _fake_rmd17_arrays(num_frames=10), train=[0, 1], test=[2])
    np.savez(tmp_path / "rmd17_ethanol_train_01.npz", **_fake_rmd17_arrays(num_frames=4, seed=1))
    assert len(load_rmd17("ethanol", "train", data_dir=tmp_path)) == 4


def test_load_archive_rejects_out_of_range_split_index(tmp_path: Path) -> None:
    _write_archive_layout(tmp_path, _fake_rmd17_arrays(num_frames=10), train=[3, 10], test=[0])
    with pytest.raises(ValueError, match=r"index_train_01\.csv holds row indices outside \[0, 10\)"):
        load_rmd17("ethanol", "train", data_dir=tmp_path)


def test_download_from_file_url_extracts_loadable_archive(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _write_archive_layout(source, _fake_rmd17_arrays(num_frames=10), train=[1, 3, 5], test=[0, 2])
    archive_path = tmp_path / "rmd17.tar.bz2"
    with tarfile.open(archive_path, "w:bz2") as archive:
        archive.add(source / "rmd17", arcname="rmd17")
    root = download_rmd17(tmp_path / "data", url=archive_path.as_uri())
    assert root == tmp_path / "data"
    assert len(load_rmd17("ethanol", "train", data_dir=root)) == 3
    assert len(load_rmd17("ethanol", "test", data_dir=root)) == 2
    assert sorted(path.name for path in root.iterdir()) == ["rmd17"]  # the archive itself is not kept


@pytest.mark.parametrize("member_name", ["../evil.txt", "/tmp/evil.txt", "rmd17/../../evil.txt"])
def test_download_rejects_member_outside_root(tmp_path: Path, member_name: str) -> None:
    archive_path = tmp_path / "evil.tar.bz2"
    with tarfile.open(archive_path, "w:bz2") as archive:
        info = tarfile.TarInfo(member_name)
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(ValueError, match="would be written outside"):
        download_rmd17(tmp_path / "data", url=archive_path.as_uri())
    assert not (tmp_path / "evil.txt").exists()


def test_download_rejects_symlink_member(tmp_path: Path) -> None:
    archive_path = tmp_path / "link.tar.bz2"
    with tarfile.open(archive_path, "w:bz2") as archive:
        info = tarfile.TarInfo("rmd17/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(ValueError, match="is a link or special file"):
        download_rmd17(tmp_path / "data", url=archive_path.as_uri())


def test_download_rejects_archive_without_rmd17_folder(tmp_path: Path) -> None:
    archive_path = tmp_path / "other.tar.bz2"
    with tarfile.open(archive_path, "w:bz2") as archive:
        info = tarfile.TarInfo("other/readme.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ValueError, match="has no rmd17/npz_data folder"):
        download_rmd17(tmp_path / "data", url=archive_path.as_uri())


def test_download_skips_when_already_extracted(tmp_path: Path) -> None:
    _write_archive_layout(tmp_path, _fake_rmd17_arrays(num_frames=10), train=[0], test=[1])
    missing_url = (tmp_path / "does_not_exist.tar.bz2").as_uri()
    assert download_rmd17(tmp_path, url=missing_url) == tmp_path


def test_load_missing_data_names_paths_and_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"rmd17_aspirin_train_01\.npz.*index_train_01\.csv.*download_rmd17"):
        load_rmd17("aspirin", "train", data_dir=tmp_path)


def test_load_unknown_molecule_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="Unknown rMD17 molecule 'water'; choose one of aspirin, azobenzene"):
        load_rmd17("water", "train")


@pytest.mark.parametrize(
    ("subset", "split", "message"),
    [("val", 1, "Unknown subset 'val'"), ("train", 6, "splits 1 to 5, got split=6"), ("test", 0, "got split=0")],
)
def test_load_rejects_bad_subset_or_split(subset: str, split: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_rmd17("ethanol", subset, split=split)


def test_load_missing_key_names_file_and_key(tmp_path: Path) -> None:
    arrays = _fake_rmd17_arrays(num_frames=4)
    del arrays["forces"]
    np.savez(tmp_path / "rmd17_ethanol_train_01.npz", **arrays)
    with pytest.raises(ValueError, match=r"rmd17_ethanol_train_01\.npz lacks the key\(s\) \['forces'\]"):
        load_rmd17("ethanol", "train", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("key", "bad_shape"),
    [("forces", (4, 2, 3)), ("coords", (4, 3, 2)), ("energies", (5,)), ("nuclear_charges", (3, 1))],
)
def test_load_mismatched_shapes_names_file_and_key(tmp_path: Path, key: str, bad_shape: tuple[int, ...]) -> None:
    arrays = _fake_rmd17_arrays(num_frames=4)
    arrays[key] = np.ones(bad_shape, dtype=arrays[key].dtype)
    np.savez(tmp_path / "rmd17_ethanol_train_01.npz", **arrays)
    with pytest.raises(ValueError, match=rf"rmd17_ethanol_train_01\.npz: '{key}'.*shape"):
        load_rmd17("ethanol", "train", data_dir=tmp_path)


@pytest.mark.parametrize("key", ["coords", "energies", "forces"])
def test_load_non_finite_values_names_file_and_key(tmp_path: Path, key: str) -> None:
    arrays = _fake_rmd17_arrays(num_frames=4)
    arrays[key].flat[0] = np.nan
    np.savez(tmp_path / "rmd17_ethanol_train_01.npz", **arrays)
    with pytest.raises(ValueError, match=rf"rmd17_ethanol_train_01\.npz: '{key}' contains NaN or inf"):
        load_rmd17("ethanol", "train", data_dir=tmp_path)
