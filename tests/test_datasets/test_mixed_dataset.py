"""MixedVideoDataset: exact per-epoch ratios, fair visits of every member's items,
determinism from (seed, draw id), nesting, lazy init."""
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from unspat_mm.datasets import BaseVideoDataset, DrawIdSampler, MixedVideoDataset


class ArrayVideoDataset(BaseVideoDataset):
    """``num`` one-frame sequences held in memory; the pipeline reports what it got."""

    def __init__(self, name, num, **kwargs):
        self.name, self.num = name, num
        kwargs.setdefault('pipeline', [self.report])
        kwargs.setdefault('serialize_data', False)  # mmengine's gc.collect() costs 0.1 s
        super().__init__(num_frames=1, **kwargs)

    def load_annotations(self):
        return dict(sequence_id=np.arange(self.num), frame_index=np.zeros(self.num, int),
                    img_index=np.zeros(self.num, int), bbox=np.ones((self.num, 4)))

    def report(self, results):
        return dict(name=self.name, item=results['sample_idx'], draw_id=results['draw_id'],
                    u=float(results['rng'].uniform()))


def members(lengths=(50, 30, 7), **kwargs):
    return [ArrayVideoDataset(f'm{i}', n, **kwargs) for i, n in enumerate(lengths)]


def test_exact_ratios_each_epoch():
    mixed = MixedVideoDataset(members(), ratios=[5, 3, 2], length=1000)
    assert len(mixed) == 1000 and mixed.slots.tolist() == [500, 300, 200]
    assert mixed.metainfo['ratios'] == pytest.approx([.5, .3, .2])
    for epoch in range(3):
        counts = Counter(mixed.locate(epoch * 1000 + i)[0] for i in range(1000))
        assert [counts[k] for k in range(3)] == [500, 300, 200]
    # largest remainders: 10 slots at 1:1:1 -> 4, 3, 3 (sums to the length)
    assert MixedVideoDataset(members(), ratios=[1, 1, 1], length=10).slots.tolist() == [4, 3, 3]


def test_fair_visits_across_epochs():
    """Every item of a member is drawn once before any item is drawn twice, also when the
    member's share of an epoch is not a multiple of its length, across epochs."""
    mixed = MixedVideoDataset(members(), ratios=[5, 3, 2], length=1000, seed=3)
    lengths = [50, 30, 7]
    visits = [np.zeros(n, int) for n in lengths]
    for epoch in range(3):
        for slot in np.random.default_rng(epoch).permutation(1000):  # a sampler's order
            k, member_draw = mixed.locate(epoch * 1000 + int(slot))
            visits[k][member_draw % lengths[k]] += 1
        for k in range(3):
            # per member: cumulative visits differ by at most one between items
            assert visits[k].max() - visits[k].min() <= 1, (epoch, k)
            assert visits[k].sum() == (epoch + 1) * mixed.slots[k]
    # the cycle a draw belongs to is the member's epoch: 200 draws of 7 items per epoch
    # -> 3 * 200 = 600 draws = 85 full cycles + 5
    draws = sorted(mixed.locate(d)[1] for d in range(3000) if mixed.locate(d)[0] == 2)
    assert draws[-1] // 7 == 85 and len(set(draws)) == 600


def test_deterministic_from_seed_and_draw_id():
    ids = np.random.default_rng(0).integers(0, 5000, 300)
    parts = members()
    # a fresh instance per draw id: no state carried from one draw to the next
    first = [MixedVideoDataset(parts, [5, 3, 2], 1000, seed=1).locate(d) for d in ids]
    fresh = MixedVideoDataset(parts, [5, 3, 2], 1000, seed=1)
    assert [fresh.locate(d) for d in ids[::-1]][::-1] == first  # order does not matter
    other = [MixedVideoDataset(parts, [5, 3, 2], 1000, seed=2).locate(d) for d in ids]
    assert sum(a != b for a, b in zip(first, other)) > 250
    # the item and its augmentation come from the member, through its own draw id
    out = fresh[int(ids[0])]
    k, member_draw = first[0]
    assert out['name'] == f'm{k}' and out['draw_id'] == member_draw
    assert out['item'] == member_draw % [50, 30, 7][k]
    assert out['u'] == np.random.default_rng([0, member_draw]).uniform()
    assert fresh[int(ids[0])] == out


def test_proportional_default_is_a_shuffled_concat():
    mixed = MixedVideoDataset(members())
    assert len(mixed) == 87 and mixed.slots.tolist() == [50, 30, 7]
    for epoch in range(2):
        seen = {mixed.locate(epoch * 87 + i) for i in range(87)}
        items = {(k, d % [50, 30, 7][k]) for k, d in seen}
        assert len(items) == 87  # every item of every member exactly once per epoch
        assert {d // [50, 30, 7][k] for k, d in seen} == {epoch}


def test_nested_mixture():
    """TCMR's shape: 3D sets by size, 2D sets by size, 40:60 between the two groups."""
    group3d = MixedVideoDataset(members((40, 10)))
    group2d = MixedVideoDataset(members((25, 75)))
    mixed = MixedVideoDataset([group3d, group2d], ratios=[.4, .6], length=500)
    leaves = Counter()
    for d in range(1500):
        k, inner = mixed.locate(d)
        leaves[(k, [group3d, group2d][k].locate(inner)[0])] += 1
    # 40% of 1500 = 600 split 4:1 by size, 900 split 1:3
    assert leaves == {(0, 0): 480, (0, 1): 120, (1, 0): 225, (1, 1): 675}
    assert mixed[7]['name'] in ('m0', 'm1')


def test_with_draw_id_sampler_and_dataloader():
    mixed = MixedVideoDataset(members((6, 4)), ratios=[1, 1], length=8)
    sampler = DrawIdSampler(mixed, shuffle=True, seed=0)
    sampler.set_epoch(2)
    loader = torch.utils.data.DataLoader(mixed, batch_size=4, sampler=sampler,
                                         collate_fn=pseudo_collate)
    batches = [b for b in loader]
    names = [n for b in batches for n in b['name']]
    assert sorted(set(names)) == ['m0', 'm1'] and Counter(names) == {'m0': 4, 'm1': 4}
    # epoch 2 of an 8-slot mixture: draw ids 16..23, each member's items in cycle >= 1
    expected = [mixed[d]['draw_id'] for d in sampler]
    assert [d for b in batches for d in b['draw_id']] == expected


def test_lazy_init_and_errors():
    lazy = MixedVideoDataset(members(lazy_init=True), ratios=[1, 1, 1], lazy_init=True)
    assert not lazy._fully_initialized
    assert len(lazy) == 87 and lazy.metainfo['slots_per_epoch'] == [29, 29, 29]
    assert [m['dataset_name'] for m in lazy.metainfo['members']] == ['video'] * 3
    with pytest.raises(ValueError, match=r'ratios must be 3 positive numbers \(one per '
                                         r'member\), got \[1.0, 0.0, 1.0\]'):
        MixedVideoDataset(members(), ratios=[1, 0, 1])
    with pytest.raises(ValueError, match='ratios must be 3 positive numbers'):
        MixedVideoDataset(members(), ratios=[1, 1])
    with pytest.raises(ValueError, match='at least one member'):
        MixedVideoDataset([])
    with pytest.raises(IndexError, match='draw id must be >= 0'):
        lazy.locate(-1)
