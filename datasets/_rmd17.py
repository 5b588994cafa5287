"""The revised MD17 (rMD17) dataset: loading, validation and download.

rMD17 (Christensen & von Lilienfeld, Mach. Learn.: Sci. Technol. 1, 045018 (2020), arXiv:2007.09593) holds
100,000 PBE/def2-SVP frames for each of ten small molecules, with five official 1000-frame train/test splits.
Two on-disk layouts are read:

(a) pre-split files ``<data_dir>/rmd17_<molecule>_<train|test>_<KK>.npz`` with 1000 frames each, as published
    at https://github.com/andersx/rmd17-npz (the layout of the bundled ethanol files);
(b) the official figshare archive extracted under ``<data_dir>``: ``rmd17/npz_data/rmd17_<molecule>.npz``
    (100,000 frames) and ``rmd17/splits/index_<train|test>_<KK>.csv`` (one row index per line).

``KK`` is the split number written with two digits, ``01`` to ``05`` (the rMD17 README writes it as ``0k``).
Both layouts store energies in kcal/mol and forces in kcal/mol/Å; the loaders convert them to meV and meV/Å.
"""

import logging
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from torch_geometric.data import Data

from ._bundled_data import bundled_data_dir
from ._frame import MAX_ATOMIC_NUMBER, make_frame
from ._units import KCAL_PER_MOL_TO_MEV

logger = logging.getLogger(__name__)

RMD17_MOLECULES: tuple[str, ...] = (
    "aspirin",
    "azobenzene",
    "benzene",
    "ethanol",
    "malonaldehyde",
    "naphthalene",
    "paracetamol",
    "salicylic",
    "toluene",
    "uracil",
)

# The official rMD17 archive on figshare (doi:10.6084/m9.figshare.12672038), a .tar.bz2 of about 100 MB.
RMD17_URL = "https://figshare.com/ndownloader/files/23950376"

# The five official train/test splits are numbered 1 to 5.
_NUM_SPLITS = 5
_SUBSETS = ("train", "test")
_REQUIRED_KEYS = ("nuclear_charges", "coords", "energies", "forces")


def load_rmd17(
    molecule: str,
    subset: Literal["train", "test"],
    *,
    split: int = 1,
    data_dir: str | Path | None = None,
) -> list[Data]:
    """Loads the 1000 frames of one rMD17 train or test split, in meV and meV/Å.

    The layout of ``data_dir`` is detected: pre-split files (layout (a) in the module docstring) are used
    when present, otherwise the extracted official archive (layout (b)).

    Args:
        molecule: One of :data:`RMD17_MOLECULES`, e.g. ``"ethanol"``.
        subset: ``"train"`` or ``"test"``.
        split: The official split number, 1 to 5.
        data_dir: The folder holding the data; ``None`` means :func:`bundled_data_dir`, which holds only
            ethanol split 1.

    Returns:
        One ``Data`` per frame, in file order, with fields ``z`` ``[N]`` (int64 atomic numbers), ``pos``
        ``[N, 3]`` (float64, Å), ``energy`` ``[1]`` (float64, meV) and ``forces`` ``[N, 3]`` (float64, meV/Å).

    Raises:
        ValueError: If ``molecule``, ``subset`` or ``split`` is not a valid choice, or if a file has missing
            keys, inconsistent shapes, non-finite values or out-of-range split indices.
        FileNotFoundError: If neither layout is found in ``data_dir``; the message lists the paths tried.

    Example:
        >>> frames = load_rmd17("ethanol", "train")
        >>> len(frames), frames[0].z.tolist()
        (1000, [6, 6, 8, 1, 1, 1, 1, 1, 1])
    """
    _check_choices(molecule, subset, split)
    root = bundled_data_dir() if data_dir is None else Path(data_dir)
    split_file = root / f"rmd17_{molecule}_{subset}_{split:02d}.npz"
    archive_file = root / "rmd17" / "npz_data" / f"rmd17_{molecule}.npz"
    index_file = root / "rmd17" / "splits" / f"index_{subset}_{split:02d}.csv"
    if split_file.is_file():
        arrays = _read_npz(split_file)
        indices = np.arange(arrays["energies"].shape[0])  # [1000]
    elif archive_file.is_file() and index_file.is_file():
        arrays = _read_npz(archive_file)
        indices = _read_split_indices(index_file, num_frames=arrays["energies"].shape[0])  # [1000]
    else:
        raise FileNotFoundError(
            f"No rMD17 data for molecule {molecule!r}, subset {subset!r}, split {split} in {root}. "
            f"Looked for {split_file} (pre-split layout) and for {archive_file} together with {index_file} "
            "(official archive layout). Run ponita.datasets.download_rmd17(root) and pass data_dir=root, or "
            "put the pre-split files from https://github.com/andersx/rmd17-npz in data_dir."
        )
    logger.info("Loading %d rMD17 %s frames of %s (split %d) from %s", len(indices), subset, molecule, split, root)
    return _frames_from_arrays(arrays, indices)


def download_rmd17(root: str | Path, *, url: str = RMD17_URL, timeout: float = 60.0) -> Path:
    """Downloads the official rMD17 archive and extracts it into ``root``.

    Afterwards ``load_rmd17(molecule, subset, data_dir=root)`` reads ``root/rmd17/npz_data`` and
    ``root/rmd17/splits``. If ``root/rmd17/npz_data`` already exists nothing is downloaded. Extraction is
    safe: an archive member with an absolute path or a ``..`` component, or one that is not a regular file
    or folder (a link or device), is rejected before anything is written.

    Args:
        root: The folder to extract into; created if missing.
        url: Where to get the ``.tar.bz2`` archive; any URL ``urllib`` opens, including ``file://``.
        timeout: Seconds to wait for the server before giving up.

    Returns:
        ``root`` as a ``Path``, to pass as ``data_dir`` to :func:`load_rmd17`.

    Raises:
        ValueError: If the archive holds an unsafe member, or does not contain ``rmd17/npz_data``.

    Example:
        ``download_rmd17("~/data/rmd17")`` fetches the official archive. Offline, ``url`` can name a local
        copy; here a stand-in archive with three frames of the bundled ethanol file as split 1:

        >>> import tarfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "index.csv").write_text("0\\n1\\n2\\n")
        >>> with tarfile.open(folder / "rmd17.tar.bz2", "w:bz2") as archive:
        ...     archive.add(bundled_data_dir() / "rmd17_ethanol_test_01.npz", "rmd17/npz_data/rmd17_ethanol.npz")
        ...     archive.add(folder / "index.csv", "rmd17/splits/index_test_01.csv")
        >>> data_dir = download_rmd17(folder / "data", url=(folder / "rmd17.tar.bz2").as_uri())
        >>> len(load_rmd17("ethanol", "test", split=1, data_dir=data_dir))
        3
        >>> shutil.rmtree(folder)
    """
    root = Path(root).expanduser()
    if (root / "rmd17" / "npz_data").is_dir():
        logger.info("rMD17 is already extracted in %s; skipping the download", root)
        return root
    root.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading rMD17 from %s to %s", url, root)
    with tempfile.TemporaryFile(dir=root) as archive_file:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, archive_file)
        archive_file.seek(0)
        with tarfile.open(fileobj=archive_file, mode="r:*") as archive:
            _safe_extract(archive, root, source=url)
    if not (root / "rmd17" / "npz_data").is_dir():
        raise ValueError(
            f"The archive from {url} has no rmd17/npz_data folder, so it is not the rMD17 archive. "
            f"Check the url (the official one is {RMD17_URL})."
        )
    return root


def _check_choices(molecule: str, subset: str, split: int) -> None:
    """Raises a ValueError naming the valid choices when an argument of :func:`load_rmd17` is not one."""
    if molecule not in RMD17_MOLECULES:
        raise ValueError(f"Unknown rMD17 molecule {molecule!r}; choose one of {', '.join(RMD17_MOLECULES)}.")
    if subset not in _SUBSETS:
        raise ValueError(f"Unknown subset {subset!r}; choose 'train' or 'test'.")
    if not isinstance(split, int) or split not in range(1, _NUM_SPLITS + 1):
        raise ValueError(f"rMD17 has splits 1 to {_NUM_SPLITS}, got split={split!r}.")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Reads the four rMD17 arrays from ``path`` and checks their keys, shapes and values."""
    with np.load(path) as npz:
        missing = [key for key in _REQUIRED_KEYS if key not in npz.files]
        if missing:
            raise ValueError(
                f"{path} lacks the key(s) {missing}; an rMD17 file needs {list(_REQUIRED_KEYS)} "
                f"but this one has {npz.files}. Check that it is an rMD17 npz file."
            )
        arrays = {key: npz[key] for key in _REQUIRED_KEYS}
    atomic_numbers = arrays["nuclear_charges"]  # [N]
    coords = arrays["coords"]  # [F, N, 3]
    if atomic_numbers.ndim != 1:
        raise ValueError(f"{path}: 'nuclear_charges' must have shape [N], got {atomic_numbers.shape}.")
    num_atoms = atomic_numbers.shape[0]
    num_frames = coords.shape[0] if coords.ndim == 3 else -1
    expected_shapes = {
        "coords": (num_frames, num_atoms, 3),
        "energies": (num_frames,),
        "forces": (num_frames, num_atoms, 3),
    }
    for key, expected in expected_shapes.items():
        if arrays[key].shape != expected:
            raise ValueError(
                f"{path}: '{key}' has shape {arrays[key].shape} but {expected} was expected from "
                f"'nuclear_charges' {atomic_numbers.shape} and 'coords' {coords.shape} "
                "(frames, atoms, 3). The file is inconsistent; re-download it."
            )
    if not np.all((atomic_numbers >= 1) & (atomic_numbers <= MAX_ATOMIC_NUMBER)):
        raise ValueError(
            f"{path}: 'nuclear_charges' must be atomic numbers 1 to {MAX_ATOMIC_NUMBER}, got {atomic_numbers}."
        )
    for key in ("coords", "energies", "forces"):
        if not np.all(np.isfinite(arrays[key])):
            raise ValueError(f"{path}: '{key}' contains NaN or inf values. The file is corrupt; re-download it.")
    return arrays


def _read_split_indices(path: Path, num_frames: int) -> np.ndarray:
    """Reads the row indices of an official split file (one integer per line) and checks their range."""
    values = np.loadtxt(path, dtype=np.float64, ndmin=1)  # [S]
    indices = values.astype(np.int64)  # [S]
    if values.ndim != 1 or not np.array_equal(indices, values):
        raise ValueError(f"{path} must hold one integer row index per line.")
    if indices.size == 0 or indices.min() < 0 or indices.max() >= num_frames:
        raise ValueError(
            f"{path} holds row indices outside [0, {num_frames}), the frame range of the molecule's npz file. "
            "The split file does not belong to this npz file; re-download the archive."
        )
    return indices


def _frames_from_arrays(arrays: dict[str, np.ndarray], indices: np.ndarray) -> list[Data]:
    """Converts the rows ``indices`` of validated rMD17 arrays (kcal/mol units) into frames (meV units)."""
    coords = arrays["coords"][indices]  # [S, N, 3]
    energies = arrays["energies"][indices] * KCAL_PER_MOL_TO_MEV  # [S]
    forces = arrays["forces"][indices] * KCAL_PER_MOL_TO_MEV  # [S, N, 3]
    atomic_numbers = arrays["nuclear_charges"]  # [N]
    return [
        make_frame(atomic_numbers, coords[i], float(energies[i]), forces[i]) for i in range(len(indices))
    ]


def _safe_extract(archive: tarfile.TarFile, root: Path, source: str) -> None:
    """Extracts regular files and folders of ``archive`` into ``root`` after checking every member."""
    members = archive.getmembers()
    for member in members:
        member_path = PurePosixPath(member.name)
        if member_path.is_absolute() or member.name.startswith("\\") or ".." in member_path.parts:
            raise ValueError(
                f"Refusing to extract {source}: member {member.name!r} would be written outside {root}. "
                "The archive is corrupt or malicious; download it again from the official url."
            )
        if not (member.isfile() or member.isdir()):
            raise ValueError(
                f"Refusing to extract {source}: member {member.name!r} is a link or special file, which the "
                "rMD17 archive does not contain. Download it again from the official url."
            )
    for member in members:
        target = root.joinpath(*PurePosixPath(member.name).parts)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source_file = archive.extractfile(member)
        with source_file, open(target, "wb") as target_file:
            shutil.copyfileobj(source_file, target_file)
