"""Batches of samples for training, with random-rotation augmentation that is exactly reproducible."""

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
        self._skip: tuple[int, int] | None = None  # (epoch, items) to leave out of that epoch's next pass

    def skip_once(self, epoch: int, items: int) -> None:
        """Makes the next pass over ``epoch`` start after its first ``items`` items (a run resumed mid-epoch)."""
        self._skip = (epoch, items)

    def pending_skip(self) -> int:
        """How many items the next pass leaves out (0 unless :meth:`skip_once` named the current epoch)."""
        return self._skip[1] if self._skip is not None and self._skip[0] == self.epoch else 0

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
        skip = self.pending_skip()
        if skip:
            self._skip = None
        return iter(zip(order[shard].tolist()[skip:], seeds[shard].tolist()[skip:]))


class RotatedFrames(Dataset):
    """Samples whose vector fields are rotated by a random rotation drawn from the seed that comes with each index.

    All ``fields`` (e.g. ``pos`` and ``forces``) are rotated together, so labels stay consistent; with
    no fields the samples are returned as they are. Indexed by ``(index, rotation_seed)`` pairs from
    :class:`EpochSampler`.

    Args:
        frames: the samples.
        fields: names of vector fields ``[..., n]`` to rotate, the first one setting the dimension.
    """

    def __init__(self, frames: Sequence[Data], fields: Sequence[str] = ("pos", "forces")) -> None:
        self.frames, self.fields = frames, tuple(fields)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: tuple[int, int]) -> Data:
        index, rotation_seed = item
        frame = self.frames[index]
        if not self.fields:
            return frame
        reference = frame[self.fields[0]]
        generator = torch.Generator().manual_seed(rotation_seed)
        rotation = random_rotation(reference.shape[-1], generator, dtype=reference.dtype)  # [n, n]
        rotated = frame.clone()
        for name in self.fields:
            rotated[name] = frame[name] @ rotation.T.to(frame[name].dtype)  # [..., n]
        return rotated


class TaskDataModule(pl.LightningDataModule):
    """Training samples (shuffled, randomly rotated) and validation samples (as given) of a task.

    Its state, saved in every checkpoint, is the epoch and how many of its batches have been trained on;
    loaded, the training loader's first pass over that epoch skips them. A run paused within an epoch
    (``--pause-after``) therefore continues with the very batch it would have trained on next.

    Args:
        train_frames: training samples.
        val_frames: validation samples.
        batch_size: samples per batch and process.
        seed: seed of the shuffling and the rotations.
        num_workers: DataLoader workers.
        rotate_fields: vector fields rotated together for augmentation (``()``: none).
    """

    def __init__(
        self,
        train_frames: Sequence[Data],
        val_frames: Sequence[Data],
        batch_size: int,
        seed: int = 0,
        num_workers: int = 0,
        rotate_fields: Sequence[str] = (),
    ) -> None:
        super().__init__()
        # Kept as given: a sequence that makes its samples on access (e.g. QM9Molecules) stays light.
        self.train_frames, self.val_frames = train_frames, val_frames
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.rotate_fields = tuple(rotate_fields)
        self._train_sampler: EpochSampler | None = None
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches trained) of a checkpoint

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        # The data loaders make CPU batches: on the CPU there is nothing to move (Lightning's generic
        # transfer walks every attribute of the batch, ~1 ms a step).
        return batch if device.type == "cpu" else batch.to(device, non_blocking=True)

    def _sampler(self) -> EpochSampler:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return EpochSampler(len(self.train_frames), self.seed, rank, world_size)

    def train_dataloader(self) -> DataLoader:
        self._train_sampler = self._sampler()
        if self._resume_at is not None:
            epoch, batches = self._resume_at
            self._train_sampler.skip_once(epoch, batches * self.batch_size)
        return DataLoader(
            RotatedFrames(self.train_frames, self.rotate_fields),
            batch_size=self.batch_size,
            sampler=self._train_sampler,
            num_workers=self.num_workers,
            drop_last=True,
        )

    def state_dict(self) -> dict[str, int]:
        if self._train_sampler is None or self.trainer is None:
            return {}
        # Lightning's count of the epoch's batches whose training step has run (the loader runs ahead by
        # the batches Lightning prefetches, so its own count would not do).
        trained = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": self._train_sampler.epoch, "batches": trained}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (state["epoch"], state["batches"]) if state else None

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_frames, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)

    def calibration_batch(self) -> Batch:
        """The first training batch of epoch 0, used once to calibrate the model."""
        sampler = self._sampler()
        sampler.set_epoch(0)
        dataset = RotatedFrames(self.train_frames, self.rotate_fields)
        items = [dataset[item] for _, item in zip(range(self.batch_size), sampler)]
        return Batch.from_data_list(items)
