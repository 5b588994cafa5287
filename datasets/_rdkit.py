"""RDKit is optional (the ``qm9`` extra): only QM9 processing and the molecule metrics, files and pictures use it.

Every function that needs RDKit calls :func:`require_rdkit` first and imports it inside, so
``import ponita.datasets`` works without it and a missing RDKit is reported in one line that says what to
install. The ``ponita`` command reports :class:`MissingDependencyError` as such a line, before any work.
"""

INSTALL_RDKIT = "pip install 'ponita[qm9]' (or pip install rdkit)"


class MissingDependencyError(ImportError):
    """An optional package that a feature needs is not installed; the message names the install command."""


def require_rdkit(feature: str) -> None:
    """Checks that RDKit can be imported, before ``feature`` starts work.

    Args:
        feature: what needs RDKit, for the message (e.g. ``"molecule_metrics"``).

    Raises:
        MissingDependencyError: if RDKit is not installed (or is blocked: ``sys.modules["rdkit"] = None``).

    Example:
        >>> require_rdkit("molecule_metrics")  # RDKit is installed with the test extra
    """
    try:
        import rdkit  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            f"{feature} needs RDKit, which is not installed: {INSTALL_RDKIT}.", name="rdkit"
        ) from None
