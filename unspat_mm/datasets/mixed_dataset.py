"""Several video datasets mixed by ratio, addressed by draw ids."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init

from unspat_mm.registry import DATASETS

__all__ = ['MixedVideoDataset']


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total`` (Hamilton's method)."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind='stable')
    counts[order[:total - counts.sum()]] += 1
    return counts


@DATASETS.register_module()
class MixedVideoDataset:
    """Draws from member datasets in fixed proportions, deterministically per draw id.

    An epoch has ``length`` slots. Draw id ``d`` (``epoch * length + slot``, see
    :class:`~unspat_mm.datasets.DrawIdSampler`) is resolved as follows:

    1. *Which member.* Member ``k`` gets ``n_k`` slots of every epoch, ``n_k``
       proportional to ``ratios[k]`` (largest remainders, so ``sum n_k = length`` and each
       epoch's mixture is exact, not binomial). The slots are dealt to the members by a
       permutation drawn from ``[seed, epoch]``.
    2. *Which item.* The ``j``-th slot of member ``k`` in epoch ``e`` is that member's
       ``c = e * n_k + j``-th draw. Member draws run through the member's items in a random
       order, a new permutation (from ``[seed, k, cycle]``) every ``len(member)`` draws:
       every item is visited once before any is visited twice, in every member, whatever
       the ratios. The member receives draw id ``cycle * len(member) + item`` (``cycle =
       c // len(member)``), so its augmentation stream is seeded per (cycle, item) and
       nested ``MixedVideoDataset`` members work the same way.

    Everything is a pure function of ``(seed, d)``: any sampling order, number of workers
    or resumption gives the same items with the same augmentation.

    ``ratios=None`` mixes in proportion to the members' lengths with ``length`` their
    sum: each epoch then visits every item once, like a shuffled ``ConcatDataset``. TCMR's
    mixture (2D and 3D sets in fixed shares, each group in proportion to size) is a
    ``MixedVideoDataset`` of two such ones.

    Args:
        datasets (Sequence[dict | Dataset]): members (configs are built from DATASETS).
        ratios (Sequence[float], optional): positive relative weights, one per member.
            Defaults to None (the members' lengths, see above).
        length (int, optional): slots per epoch. Defaults to None (the sum of the
            members' lengths).
        seed (int): seed of the mixing (member augmentation has the members' own seeds).
            Defaults to 0.
        lazy_init (bool): defer loading the members' annotations to the first use.
            Defaults to False.
    """

    def __init__(self, datasets: Sequence[Union[dict, BaseDataset]],
                 ratios: Optional[Sequence[float]] = None, length: Optional[int] = None,
                 seed: int = 0, lazy_init: bool = False):
        if not datasets:
            raise ValueError('MixedVideoDataset needs at least one member dataset')
        self.datasets: List = [DATASETS.build(d) if isinstance(d, dict) else d
                               for d in datasets]
        if ratios is not None:
            ratios = np.asarray(ratios, dtype=np.float64)
            if ratios.shape != (len(self.datasets), ) or not (ratios > 0).all():
                raise ValueError(f'MixedVideoDataset: ratios must be {len(self.datasets)} '
                                 f'positive numbers (one per member), got {ratios.tolist()}')
        if length is not None and int(length) < 1:
            raise ValueError(f'MixedVideoDataset: length must be >= 1, got {length}')
        self.ratios, self.length, self.seed = ratios, length, int(seed)
        self._metainfo = dict(dataset_name='mixed',
                              members=[copy.deepcopy(getattr(d, 'metainfo', {}))
                                       for d in self.datasets])
        self._fully_initialized = False
        self._cycle_cache: dict = {}
        self._epoch_cache: Tuple[int, Optional[np.ndarray]] = (-1, None)
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """``dataset_name='mixed'``, ``members`` (their metainfo), ``ratios`` and
        ``slots_per_epoch`` (``n_k``, once initialised)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Load every member and fix the slots each gets per epoch."""
        if self._fully_initialized:
            return
        for dataset in self.datasets:
            dataset.full_init()
        self.member_lengths = np.array([len(d) for d in self.datasets], np.int64)
        if (self.member_lengths == 0).any():
            empty = int(np.flatnonzero(self.member_lengths == 0)[0])
            raise ValueError(f'MixedVideoDataset: member {empty} '
                             f'({type(self.datasets[empty]).__name__}) has no items')
        weights = self.member_lengths if self.ratios is None else self.ratios
        total = int(self.member_lengths.sum() if self.length is None else self.length)
        self.slots = _largest_remainder(np.asarray(weights, np.float64), total)
        self._len = total
        self._metainfo.update(ratios=(weights / np.sum(weights)).tolist(),
                              slots_per_epoch=self.slots.tolist())
        self._fully_initialized = True

    @force_full_init
    def __len__(self) -> int:
        return self._len

    def _slot_plan(self, epoch: int) -> Tuple[np.ndarray, np.ndarray]:
        """(length,) member of each slot and the slot's rank among that member's slots."""
        if self._epoch_cache[0] != epoch:
            member = np.repeat(np.arange(len(self.datasets)), self.slots)
            member = np.random.default_rng([self.seed, epoch]).permutation(member)
            rank = np.empty_like(member)
            for k in range(len(self.datasets)):
                rank[member == k] = np.arange(self.slots[k])
            self._epoch_cache = (epoch, (member, rank))
        return self._epoch_cache[1]

    def _item_order(self, member: int, cycle: int) -> np.ndarray:
        key = (member, cycle)
        if key not in self._cycle_cache:
            # keep one cycle per member: consecutive draws mostly share it
            self._cycle_cache = {k: v for k, v in self._cycle_cache.items() if k[0] != member}
            self._cycle_cache[key] = np.random.default_rng(
                [self.seed, member, cycle]).permutation(int(self.member_lengths[member]))
        return self._cycle_cache[key]

    @force_full_init
    def locate(self, draw_id: int) -> Tuple[int, int]:
        """``(member index, member draw id)`` of draw id ``draw_id`` (class docstring)."""
        draw_id = int(draw_id)
        if draw_id < 0:
            raise IndexError(f'draw id must be >= 0, got {draw_id}')
        epoch, slot = divmod(draw_id, self._len)
        members, ranks = self._slot_plan(epoch)
        k = int(members[slot])
        count = epoch * int(self.slots[k]) + int(ranks[slot])
        cycle, position = divmod(count, int(self.member_lengths[k]))
        item = int(self._item_order(k, cycle)[position])
        return k, cycle * int(self.member_lengths[k]) + item

    def get_data_info(self, draw_id: int) -> dict:
        """The member's annotation of draw id ``draw_id`` (no pipeline)."""
        k, member_draw = self.locate(draw_id)
        return self.datasets[k].get_data_info(member_draw % len(self.datasets[k]))

    def __getitem__(self, draw_id: int) -> dict:
        k, member_draw = self.locate(draw_id)
        return self.datasets[k][member_draw]

    def __repr__(self) -> str:
        names = [type(d).__name__ for d in self.datasets]
        return (f'{type(self).__name__}(members={names}, ratios='
                f'{None if self.ratios is None else self.ratios.tolist()}, length='
                f'{self.length}, seed={self.seed})')
