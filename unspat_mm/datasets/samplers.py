"""Samplers whose indices carry the epoch, for augmentation that resumes exactly."""
from typing import Iterator

from mmengine.dataset import DefaultSampler

from unspat_mm.registry import DATA_SAMPLERS

__all__ = ['DrawIdSampler']


@DATA_SAMPLERS.register_module()
class DrawIdSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` yielding *draw ids* ``epoch * len(dataset) + index``.

    The order of indices is the parent's (shuffled by ``seed + epoch``); only their value
    changes. :class:`~unspat_mm.datasets.BaseVideoDataset` maps a draw id back to item
    ``draw_id % len`` and seeds the augmentation of that item by ``[seed, draw_id]``, so
    augmentation depends on (seed, epoch, index) alone: a run interrupted and resumed (at
    an epoch boundary, or mid-epoch by mmengine skipping the consumed batches) draws the
    same augmentations as an uninterrupted run, whatever ``num_workers``. The epoch comes
    from ``set_epoch``, which mmengine's loops call (``DistSamplerSeedHook``).
    """

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * len(self.dataset)
        return (offset + int(index) for index in super().__iter__())
