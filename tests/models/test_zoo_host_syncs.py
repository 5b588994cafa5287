"""Every zoo model's forward (and the generator's training loss) on a torch_geometric Batch never waits for the device.

A ``Batch`` keeps the size of each graph on the host, so the fully connected graph needs no device read;
the host-sync counter (``ponita.testing``) sees every kind of wait a GPU would make, on the CPU.
"""

import pytest
import torch
from torch_geometric.data import Batch, Data

from ponita.models import (
    EDM,
    EDMConfig,
    EGNNConfig,
    EGNNNBody,
    NBodyConfig,
    PonitaNBody,
    PonitaPotential,
    PonitaRegressor,
    RegressorConfig,
    model_classes,
)
from ponita.testing import HostSyncCounter

SMALL = {"hidden_dim": 8, "num_layers": 1, "num_ori": 4}


def _molecules(*sizes: int) -> Batch:
    generator = torch.Generator().manual_seed(0)
    elements = torch.tensor([6, 1, 8, 1, 1, 7])
    return Batch.from_data_list([
        Data(pos=torch.randn(n, 3, generator=generator), z=elements[:n], x=torch.randn(n, 3, generator=generator),
             vel=torch.randn(n, 3, generator=generator), charge=torch.ones(n, 1)) for n in sizes])


MODELS = {
    "PonitaPotential": lambda: PonitaPotential([1, 6, 7, 8], {1: 0.0, 6: 0.0, 7: 0.0, 8: 0.0}, 1.0, **SMALL),
    "EDM": lambda: EDM(EDMConfig([1, 6, 7, 8], {3: 1, 5: 1}, network=SMALL)),
    "EGNNNBody": lambda: EGNNNBody(EGNNConfig(hidden_dim=8, num_layers=1)),
    "PonitaNBody": lambda: PonitaNBody(NBodyConfig(SMALL)),
    "PonitaRegressor": lambda: PonitaRegressor(RegressorConfig(0.0, 1.0, input_dim=3, network=SMALL)),
}


def _run(name: str, model: torch.nn.Module, batch: Batch) -> None:
    if name == "EDM":  # the generator's forward in training is its loss
        for objective in ("vp", "karras"):
            model.config.objective = objective
            model.loss(batch)
    else:
        model(batch)


def test_every_registered_zoo_model_is_covered() -> None:
    assert set(MODELS) == set(model_classes())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_on_a_batch_never_waits_for_the_device(name: str) -> None:
    model, batch = MODELS[name](), _molecules(5, 3, 6)
    with HostSyncCounter() as counter:
        _run(name, model, batch)
    assert dict(counter.counts) == {}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_without_the_batch_record_the_graph_sizes_are_read_from_the_device(name: str) -> None:
    """Negative control: a plain Data with only a batch vector makes the model read the sizes."""
    batch = _molecules(5, 3)
    plain = Data(**{key: batch[key] for key in ("pos", "z", "x", "vel", "charge", "batch")})
    with HostSyncCounter() as counter:
        _run(name, MODELS[name](), plain)
    assert counter.total > 0
