import numpy as np
import pytest

from unspat_mm.datasets.transforms import RandomSyntheticBackground


def _results(seed=0):
    rng = np.random.default_rng(100)
    imgs = rng.integers(0, 256, (4, 40, 50, 3), dtype=np.uint8)
    person = np.zeros((4, 40, 50), bool)
    person[:, 10:30, 20:30] = True
    occluder = np.zeros_like(person)
    occluder[2, :5] = True
    return dict(imgs=imgs, person_mask=person, occluder_mask=occluder,
                rng=np.random.default_rng(seed))


def test_replaces_only_the_background():
    res = _results()
    original = res['imgs'].copy()
    keep = res['person_mask'] | res['occluder_mask']
    out = RandomSyntheticBackground(prob=1., noise_std=2.)(res)['imgs']
    np.testing.assert_array_equal(out[keep], original[keep])
    assert (out[~keep] != original[~keep]).any(-1).mean() > .9
    # one static background for the clip: frames differ by the pixel noise only
    both = ~keep[0] & ~keep[3]
    assert np.abs(out[0].astype(int) - out[3].astype(int))[both].mean() < 4


def test_deterministic_given_the_rng_and_prob():
    a = RandomSyntheticBackground(prob=1.)(_results(seed=1))['imgs']
    b = RandomSyntheticBackground(prob=1.)(_results(seed=1))['imgs']
    c = RandomSyntheticBackground(prob=1.)(_results(seed=2))['imgs']
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    res = _results()
    np.testing.assert_array_equal(RandomSyntheticBackground(prob=0.)(dict(res))['imgs'],
                                  res['imgs'])
    used = sum(RandomSyntheticBackground(prob=.5)(_results(seed=s))['imgs'][0, 0, 0, 0] !=
               _results()['imgs'][0, 0, 0, 0] for s in range(40))
    assert 10 < used < 30


def test_needs_masks():
    res = _results()
    res.pop('person_mask')
    with pytest.raises(KeyError, match='with_masks=True'):
        RandomSyntheticBackground()(res)
