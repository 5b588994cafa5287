"""Batches of molecular frames for training, with random-rotation augmentation that is exactly reproducible."""

from collections.abc import Iterator, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset, Sampler
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from ponita.geometry import random_rotation


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffles the frames each epoch from ``(seed, epoch)`` alone and shards them over processes.

    Yields ``(index, rotation_seed)`` pairs, so the order and the augmentation of every epoch depend only
    on the seed and the epoch number (set by Lightning through :meth:`set_epoch`). A resumed run therefore
    sees exactly the batches an uninterrupted run would. With several processes each rank takes every
    ``world_size``-th frame of the shuffled order, truncated so that all ranks get the same number.

    Args:
        num_items: frames in the dataset.
        seed: base seed.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(self, num_items: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.num_items, self.seed, self.rank, self.world_size = num_items, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch whose order and rotations are produced next."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_items // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.num_items, generator=generator)  # [num_items]
        seeds = torch.randint(0, 2**62, (self.num_items,), generator=generator)  # [num_items]
        shard = slice(self.rank, len(self) * self.world_size, self.world_size)
        return iter(zip(order[shard].tolist(), seeds[shard].tolist()))


class RotatedFrames(Dataset):
    """Frames rotated by a random rotation drawn from the seed that comes with each index.

    ``pos`` and ``forces`` are rotated together (forces are vectors), so labels stay consistent.
    Indexed by ``(index, rotation_seed)`` pairs from :class:`EpochSampler`.
    """

    def __init__(self, frames: Sequence[Data]) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: tuple[int, int]) -> Data:
        index, rotation_seed = item
        frame = self.frames[index]
        rotation = random_rotation(3, torch.Generator().manual_seed(rotation_seed), dtype=frame.pos.dtype)  # [3, 3]
        rotated = frame.clone()
        rotated.pos = frame.pos @ rotation.T  # [N, 3]
        rotated.forces = frame.forces @ rotation.T  # [N, 3]
        return rotated


class PotentialDataModule(pl.LightningDataModule):
    """Training frames (shuffled, randomly rotated) and validation frames (as given) for a potential.

    Args:
        train_frames: training frames (``z``, ``pos``, ``energy``, ``forces``).
        val_frames: validation frames.
        batch_size: molecules per batch and process.
        seed: seed of the shuffling and the rotations.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        train_frames: Sequence[Data],
        val_frames: Sequence[Data],
        batch_size: int,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.train_frames, self.val_frames = list(train_frames), list(val_frames)
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def _sampler(self) -> EpochSampler:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return EpochSampler(len(self.train_frames), self.seed, rank, world_size)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            RotatedFrames(self.train_frames),
            batch_size=self.batch_size,
            sampler=self._sampler(),
            num_workers=self.num_workers,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_frames, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)

    def calibration_batch(self) -> Batch:
        """The first training batch of epoch 0, used once by :meth:`ponita.models.PonitaPotential.calibrate`."""
        sampler = self._sampler()
        sampler.set_epoch(0)
        dataset = RotatedFrames(self.train_frames)
        items = [dataset[item] for _, item in zip(range(self.batch_size), sampler)]
        return Batch.from_data_list(items)
