"""ponita: SE(n)-equivariant networks by weight sharing over bi-invariant point-pair attributes.

The layers live in :mod:`ponita.nn`, the geometry in :mod:`ponita.geometry`, graph construction in
:mod:`ponita.graph`, kernels in :mod:`ponita.ops`; :class:`Ponita` puts them together.
"""

from ponita._ponita import Ponita, PonitaConfig
from ponita._spaces import SPACES

__version__ = "0.1.0"

__all__ = ["SPACES", "Ponita", "PonitaConfig", "__version__"]
