"""ponita: SE(n)-equivariant networks by weight sharing over bi-invariant point-pair attributes."""

__version__ = "0.1.0"
