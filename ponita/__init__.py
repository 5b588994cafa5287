"""ponita: SE(n)-equivariant networks by weight sharing over bi-invariant point-pair attributes.

The layers live in :mod:`ponita.nn`, the geometry in :mod:`ponita.geometry`, graph construction in
:mod:`ponita.graph`, kernels in :mod:`ponita.ops`; :class:`Ponita` puts them together.
"""

import warnings

with warnings.catch_warnings():
    # torch_geometric (2.8) runs torch.jit.script on a few of its classes when imported, which torch deprecates
    # (a DeprecationWarning, a FutureWarning from 2.14) on every import: nothing a user of ponita can act on.
    # Only this import is quietened; the filter does not outlive it.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is")
    import torch_geometric  # noqa: F401

from ponita._ponita import Ponita, PonitaConfig  # noqa: E402
from ponita._spaces import SPACES  # noqa: E402

__version__ = "0.1.0"

__all__ = ["SPACES", "Ponita", "PonitaConfig", "__version__"]
