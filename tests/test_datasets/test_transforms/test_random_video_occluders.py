"""RandomVideoOccluders: occluders change pixels only where their mask says, drift smoothly,
come from the rng alone, and a user bank is read safely."""
import numpy as np
import pytest

from unspat_mm.datasets.transforms import (RandomVideoOccluders, load_occluder_bank,
                                           save_occluder_bank)
from unspat_mm.registry import TRANSFORMS

T, S = 16, 64


def _window(seed=0, value=None):
    rng = np.random.default_rng(seed)
    imgs = (np.full((T, S, S, 3), value, np.uint8) if value is not None else
            rng.integers(0, 256, (T, S, S, 3), dtype=np.uint8))
    kp = rng.uniform(0, S, (T, 29, 2)).astype(np.float32)
    return dict(imgs=imgs, keypoints2d=kp, keypoints2d_valid=np.ones((T, 29), np.float32),
                rng=np.random.default_rng(seed))


def test_pixels_change_only_inside_the_mask():
    occ = TRANSFORMS.build(dict(type='RandomVideoOccluders', prob=1., num_occluders=(1, 3),
                                with_mask=True))
    covered = []
    for seed in range(10):
        res = _window(seed)
        before = res['imgs'].copy()
        out = occ(res)
        mask = out['occluder_masks']
        assert mask.shape == (T, S, S) and mask.dtype == bool and out['imgs'].dtype == np.uint8
        changed = (out['imgs'] != before).any(-1)
        assert not (changed & ~mask).any()  # nothing outside the mask
        assert changed[mask].mean() > .9  # and the mask is not a blanket (random frames)
        covered.append(mask.mean())
        # labels are untouched: occluded joints stay valid, the model has to infer them
        np.testing.assert_array_equal(out['keypoints2d_valid'], 1.)
    assert .02 < np.mean(covered) < .6


def _white_disc_bank(tmp_path):
    yy, xx = np.mgrid[:21, :21]
    patch = np.full((21, 21, 4), 255, np.uint8)
    patch[..., 3] = np.where((yy - 10)**2 + (xx - 10)**2 <= 100, 255, 0)
    path = str(tmp_path / 'disc.npz')
    save_occluder_bank(path, [patch])
    return path


def test_the_occluder_drifts_smoothly(tmp_path):
    """One occluder, no rotation, constant scale: its alpha-weighted centroid (a white disc
    on black frames) moves on a line at a constant speed (second differences < 0.1 px, 0.05
    measured: resampling a hard-edged patch; the speed is ~0.7 px a frame),
    its coverage stays constant, and the masks of consecutive frames overlap."""
    occ = RandomVideoOccluders(prob=1., num_occluders=(1, 1), size=(.3, .3),
                               center_range=(.4, .6), max_shift=.25, max_scale_change=0.,
                               max_rotation=0., with_mask=True,
                               bank_file=_white_disc_bank(tmp_path))
    ys, xs = np.mgrid[:S, :S] + .5
    moved = 0
    for seed in range(8):
        out = occ(_window(seed, value=0))
        alpha, mask = out['imgs'][..., 0] / 255., out['occluder_masks']
        mass = alpha.sum((1, 2))
        centroid = np.stack([(alpha * xs).sum((1, 2)), (alpha * ys).sum((1, 2))], -1) / mass[
            :, None]
        assert np.abs(np.diff(centroid, 2, axis=0)).max() < .1
        assert mass.min() > .99 * mass.max()
        iou = (mask[1:] & mask[:-1]).sum((1, 2)) / (mask[1:] | mask[:-1]).sum((1, 2))
        assert iou.min() > .6
        moved += np.linalg.norm(centroid[-1] - centroid[0]) > 2
    assert moved >= 6  # they do move
    # the scale changes geometrically (rotating meanwhile): log(area) is linear in t
    # (second differences measured < 3.4e-3 for these upscaled patches)
    grow = RandomVideoOccluders(prob=1., num_occluders=(1, 1), center_range=(.5, .5),
                                size=(.6, .6), max_shift=0., max_rotation=45.,
                                bank_file=occ.bank_file)
    for seed in range(4):
        log_mass = np.log(grow(_window(seed, value=0))['imgs'][..., 0].sum((1, 2), dtype=float))
        assert np.abs(np.diff(log_mass, 2)).max() < 5e-3
        assert abs(log_mass[-1] - log_mass[0]) > .05


def test_duration_limits_the_frames_an_occluder_is_visible():
    occ = RandomVideoOccluders(prob=1., num_occluders=(1, 1), size=(.4, .4),
                               center_range=(.5, .5), duration=(.25, .25), with_mask=True)
    for seed in range(5):
        visible = np.flatnonzero(occ(_window(seed))['occluder_masks'].any((1, 2)))
        assert len(visible) == 4 and np.all(np.diff(visible) == 1)


def test_randomness_comes_from_the_rng():
    occ = RandomVideoOccluders(prob=.5, with_mask=True)
    outcomes = []
    for seed in range(40):
        a, b = occ(_window(seed)), occ(_window(seed))
        np.testing.assert_array_equal(a['imgs'], b['imgs'])
        np.testing.assert_array_equal(a['occluder_masks'], b['occluder_masks'])
        outcomes.append(bool(a['occluder_masks'].any()))
    assert 10 < sum(outcomes) < 30
    a = RandomVideoOccluders(prob=1.)(_window(0, value=128))
    b = RandomVideoOccluders(prob=1.)({**_window(0, value=128), 'rng': np.random.default_rng(1)})
    assert (a['imgs'] != b['imgs']).any()
    # prob=0: the identity, no rng needed; prob=1: always occludes
    res = _window(0)
    res.pop('rng')
    before = res['imgs'].copy()
    out = RandomVideoOccluders(prob=0., with_mask=True)(res)
    assert not out['occluder_masks'].any()
    np.testing.assert_array_equal(out['imgs'], before)
    for seed in range(10):
        assert (RandomVideoOccluders(prob=1.)(_window(seed, value=7))['imgs'] != 7).any()


def test_occluders_from_a_bank(tmp_path):
    """A solid red disc with an opaque core: its core pixels become exactly red."""
    patch = np.zeros((21, 21, 4), np.uint8)
    yy, xx = np.mgrid[:21, :21]
    patch[..., 0] = 255
    patch[..., 3] = np.where((yy - 10)**2 + (xx - 10)**2 <= 100, 255, 0)
    path = str(tmp_path / 'bank.npz')
    save_occluder_bank(path, [patch, patch[:15]])
    bank = load_occluder_bank(path)
    assert len(bank) == 2
    np.testing.assert_array_equal(bank[0], patch)
    occ = RandomVideoOccluders(prob=1., num_occluders=(1, 1), size=(.5, .5), bank_file=path,
                               max_rotation=0., with_mask=True, mask_threshold=.999)
    out = occ(_window(0, value=0))
    core = out['occluder_masks']
    assert core.sum() > T * 100
    np.testing.assert_array_equal(out['imgs'][core], [[255, 0, 0]] * int(core.sum()))
    # an (N, h, w, 4) array counts as N patches
    np.savez(str(tmp_path / 'stack.npz'), patches=np.stack([patch, patch, patch]))
    assert len(load_occluder_bank(str(tmp_path / 'stack.npz'))) == 3


def test_bad_banks_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.npz'):
        load_occluder_bank(str(tmp_path / 'missing.npz'))
    bad = {'float.npz': dict(a=np.zeros((8, 8, 4), np.float32)),
           'rgb.npz': dict(a=np.zeros((8, 8, 3), np.uint8)),
           'clear.npz': dict(a=np.zeros((8, 8, 4), np.uint8))}
    for name, arrays in bad.items():
        np.savez(str(tmp_path / name), **arrays)
        with pytest.raises(ValueError, match=f"{name}: array 'a'"):
            load_occluder_bank(str(tmp_path / name))
    np.savez(str(tmp_path / 'objects.npz'), a=np.array([np.zeros(3), 'x'], dtype=object))
    np.save(str(tmp_path / 'single.npy'), np.zeros((8, 8, 4), np.uint8))
    good = str(tmp_path / 'good.npz')
    save_occluder_bank(good, [np.full((8, 8, 4), 255, np.uint8)])
    with open(good, 'rb') as f:
        data = f.read()
    with open(str(tmp_path / 'truncated.npz'), 'wb') as f:
        f.write(data[:len(data) // 2])
    for name in ('objects.npz', 'single.npy', 'truncated.npz'):
        with pytest.raises(ValueError, match=f'{name} is not a readable .npz'):
            load_occluder_bank(str(tmp_path / name))
    with pytest.raises(ValueError, match='no patches'):
        save_occluder_bank(str(tmp_path / 'empty.npz'), [])


def test_bad_input_gives_clear_errors():
    occ = RandomVideoOccluders(prob=1.)
    with pytest.raises(ValueError, match='uint8'):
        occ({**_window(), 'imgs': np.zeros((T, S, S, 3), np.float32)})
    with pytest.raises(ValueError, match=r'\(T, H, W, 3\)'):
        occ({**_window(), 'imgs': np.zeros((S, S, 3), np.uint8)})
    with pytest.raises(KeyError, match='rng'):
        occ({'imgs': np.zeros((T, S, S, 3), np.uint8)})
    # an existing mask of that key is OR-ed with the new one
    old = np.zeros((T, S, S), bool)
    old[:, 0, 0] = True
    out = RandomVideoOccluders(prob=1., center_range=(.5, .5), size=(.1, .1), max_shift=0.,
                               with_mask=True)({**_window(), 'occluder_masks': old})
    assert out['occluder_masks'][:, 0, 0].all() and out['occluder_masks'][:, S // 2, S // 2].all()
    with pytest.raises(ValueError, match='mask_key'):
        RandomVideoOccluders(prob=1., with_mask=True)(
            {**_window(), 'occluder_masks': np.zeros((T, 8, 8), bool)})
    for kwargs in (dict(prob=2.), dict(num_occluders=(2, 1)), dict(size=(0., .3)),
                   dict(duration=(.5, 1.5)), dict(max_scale_change=1.)):
        with pytest.raises(ValueError, match='must satisfy'):
            RandomVideoOccluders(**kwargs)
