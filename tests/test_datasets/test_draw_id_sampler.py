"""Augmentation as a pure function of (seed, epoch, index): order and workers don't matter."""
import numpy as np
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from torch.utils.data import DataLoader

from unspat_mm.datasets import BaseVideoDataset, DrawIdSampler
from unspat_mm.registry import DATA_SAMPLERS

PIPELINE = [dict(type='LoadVideoFrames'),
            dict(type='VideoBBoxCrop', input_size=16, scale_factor=.3, rot_factor=30,
                 rot_prob=.5, shift_factor=.2),
            dict(type='PackVideoMeshInputs')]


class NoiseVideoDataset(BaseVideoDataset):
    """Two sequences of random frames."""

    def load_annotations(self):
        n = 12
        return dict(sequence_id=np.repeat([0, 1], n // 2), frame_index=np.tile(np.arange(6), 2),
                    img_index=np.arange(n), bbox=np.tile([16., 16., 20., 20.], (n, 1)),
                    keypoints2d=np.random.default_rng(0).uniform(8, 24, (n, 29, 2)))

    def load_images(self):
        return np.random.default_rng(1).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)


def _dataset(seed=0):
    return NoiseVideoDataset(num_frames=3, seed=seed, pipeline=PIPELINE)


def _by_draw_id(dataset, sampler, num_workers):
    loader = DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=num_workers,
                        collate_fn=pseudo_collate)
    out = {}
    for batch in loader:
        for inputs, sample in zip(batch['inputs'], batch['data_samples']):
            out[sample.draw_id] = (inputs, sample.keypoints2d, sample.crop_affine)
    return out


def test_draw_ids_are_epoch_offset_indices():
    ds = _dataset()
    sampler = DATA_SAMPLERS.build(dict(type='DrawIdSampler', dataset=ds, shuffle=True, seed=3))
    plain = DefaultSampler(ds, shuffle=True, seed=3)
    for epoch in (0, 2):
        sampler.set_epoch(epoch)
        plain.set_epoch(epoch)
        ids = list(sampler)
        assert ids == [epoch * len(ds) + i for i in plain]
        assert sorted(i % len(ds) for i in ids) == list(range(len(ds)))


def test_same_augmentation_whatever_the_order_and_workers():
    ds = _dataset()
    sampler = DrawIdSampler(ds, shuffle=True, seed=3)
    sampler.set_epoch(1)
    serial = _by_draw_id(ds, sampler, num_workers=0)
    parallel = _by_draw_id(ds, sampler, num_workers=2)
    reverse = {d: (s['inputs'], s['data_samples'].keypoints2d, s['data_samples'].crop_affine)
               for d in sorted(serial, reverse=True) for s in [ds[d]]}
    assert set(serial) == set(parallel) == set(range(len(ds), 2 * len(ds)))
    for draw_id, (inputs, kp, affine) in serial.items():
        for other in (parallel, reverse):
            torch.testing.assert_close(other[draw_id][0], inputs, rtol=0, atol=0)
            torch.testing.assert_close(other[draw_id][1], kp, rtol=0, atol=0)
            np.testing.assert_array_equal(other[draw_id][2], affine)
    # a fresh dataset object (a resumed run) draws the same; another epoch or seed does not
    resumed = _dataset()[len(ds) + 5]
    torch.testing.assert_close(resumed['inputs'], serial[len(ds) + 5][0], rtol=0, atol=0)
    other_epoch = ds[2 * len(ds) + 5]['data_samples'].crop_affine
    assert np.abs(other_epoch - serial[len(ds) + 5][2]).max() > 1e-3
    other_seed = _dataset(seed=9)[len(ds) + 5]['data_samples'].crop_affine
    assert np.abs(other_seed - serial[len(ds) + 5][2]).max() > 1e-3
