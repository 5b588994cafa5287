"""Counting the operations that make the host wait for the device (host synchronisations)."""

import collections

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Operators whose result the host must read, or whose output size depends on tensor values, so that on
# a GPU the host waits for every queued kernel before it can go on.
_ALWAYS = {
    aten._local_scalar_dense: "item",  # .item(), bool(t), int(t), float(t), if t: ...
    aten.is_nonzero: "item",
    aten.equal: "item",
    aten.nonzero: "nonzero",
    aten.masked_select: "masked_select",
    aten.unique_consecutive: "unique",
    aten._unique2: "unique",
    aten._unique: "unique",
    aten.unique_dim: "unique",
    aten.bincount: "bincount",
}


class HostSyncCounter(TorchDispatchMode):
    """Counts, per kind, the operations in a block that synchronise the host with a GPU.

    Counted: reads of a tensor value on the host (``.item()``, ``bool``/``int``/``float`` of a tensor,
    a Python ``if`` on one, ``torch.equal``), and operators whose output size depends on tensor values
    (``nonzero``, boolean-mask indexing, ``masked_select``, ``unique``, ``bincount``,
    ``repeat_interleave`` without ``output_size``). They are counted on any device, so a CPU run tells
    what a GPU run would wait for. Not seen: ``.tolist()``/``.numpy()``, which bypass the dispatcher.

    Example:
        >>> with HostSyncCounter() as counter:
        ...     x = torch.arange(4.0)
        ...     _ = x[x > 1]  # boolean mask: one nonzero
        ...     _ = int(x.sum())  # one host read
        >>> dict(counter.counts), counter.total
        ({'boolean index': 1, 'item': 1}, 2)
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def total(self) -> int:
        """All counted synchronisations."""
        return sum(self.counts.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D105
        kwargs = kwargs or {}
        kind = _sync_kind(func, args, kwargs)
        if kind is not None:
            self.counts[kind] += 1
        return func(*args, **kwargs)


def _sync_kind(func, args: tuple, kwargs: dict) -> str | None:
    packet = func.overloadpacket
    if packet in _ALWAYS:
        return _ALWAYS[packet]
    if func in (aten.repeat_interleave.Tensor, aten.repeat_interleave.self_Tensor):
        return "repeat_interleave" if kwargs.get("output_size") is None else None
    if packet in (aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_):
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
            return "boolean index"
    return None
