"""VideoColorJitter: one set of factors per window, torchvision's (PIL's) definitions."""
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from unspat_mm.datasets.transforms import VideoColorJitter
from unspat_mm.registry import TRANSFORMS

T, H, W = 6, 24, 32


def _window(seed=0, same=False):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (1 if same else T, H, W, 3), dtype=np.uint8)
    return dict(imgs=np.repeat(frames, T, 0) if same else frames, rng=np.random.default_rng(seed))


def test_one_set_of_factors_for_the_window():
    jitter = TRANSFORMS.build(dict(type='VideoColorJitter', brightness=.4, contrast=.4,
                                   saturation=.4, hue=.1))
    for seed in range(5):
        out = jitter(_window(seed, same=True))['imgs']
        assert out.dtype == np.uint8 and out.shape == (T, H, W, 3)
        np.testing.assert_array_equal(out, np.repeat(out[:1], T, 0))  # T equal frames
        assert (out[0] != _window(seed, same=True)['imgs'][0]).mean() > .5
    # different frames: one map of colours for all of them (contrast uses the window's
    # mean), so equal input pixels give equal output pixels in every frame
    res = _window(7)
    res['imgs'][:, :8] = res['imgs'][0, :8]
    out = jitter(res)['imgs']
    np.testing.assert_array_equal(out[:, :8], np.repeat(out[:1, :8], T, 0))


def test_matches_pil_enhance():
    """Brightness, contrast and saturation with fixed factors against PIL's ImageEnhance
    (what torchvision's ColorJitter uses on PIL images): within 1 grey level (PIL rounds
    its grey image and mean to integers)."""
    img = _window(1)['imgs'][:1]
    pil = Image.fromarray(img[0])
    for name, enhancer in (('brightness', ImageEnhance.Brightness),
                           ('contrast', ImageEnhance.Contrast),
                           ('saturation', ImageEnhance.Color)):
        for factor in (.3, .8, 1.6):
            out = VideoColorJitter(**{name: (factor, factor)})(
                dict(imgs=img, rng=np.random.default_rng(0)))['imgs'][0]
            ref = np.asarray(enhancer(pil).enhance(factor))
            assert np.abs(out.astype(int) - ref).max() <= 1, (name, factor)
            assert (out != img[0]).any()


def test_hue():
    pure = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]]], np.uint8)
    out = VideoColorJitter(hue=(1 / 3, 1 / 3))(dict(imgs=pure, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(out['imgs'][0, 0], [[0, 255, 0], [0, 0, 255], [255, 0, 0],
                                                      [128, 128, 128]])
    res = _window(2)
    there = VideoColorJitter(hue=(.2, .2))({**res})['imgs']
    back = VideoColorJitter(hue=(-.2, -.2))(dict(imgs=there, rng=res['rng']))['imgs']
    assert np.abs(back.astype(int) - res['imgs']).max() <= 2  # two uint8 roundings


def test_identity_and_range():
    res = _window(3)
    res.pop('rng')  # zero factors draw nothing
    assert VideoColorJitter()(dict(res))['imgs'] is res['imgs']
    assert VideoColorJitter(brightness=.5, prob=0.)(dict(res))['imgs'] is res['imgs']
    out = VideoColorJitter(brightness=(4., 4.))(dict(_window(3)))['imgs']
    assert out.dtype == np.uint8 and out.max() == 255 and (out == 255).mean() > .5
    out = VideoColorJitter(contrast=(0., 0.))(dict(_window(3)))['imgs']
    assert out.dtype == np.uint8 and np.ptp(out) == 0  # all the window's mean grey


def test_randomness_comes_from_the_rng():
    jitter = VideoColorJitter(brightness=.3, contrast=.3, saturation=.3, hue=.05)
    a, b = jitter(_window(4)), jitter(_window(4))
    np.testing.assert_array_equal(a['imgs'], b['imgs'])
    assert a['color_jitter_factors'] == b['color_jitter_factors']
    c = jitter({**_window(4), 'rng': np.random.default_rng(5)})
    assert (a['imgs'] != c['imgs']).any()
    orders = {tuple(jitter(_window(s))['color_jitter_factors']) for s in range(30)}
    assert len(orders) > 5  # the order of the four operations is random too


def test_bad_input_gives_clear_errors():
    jitter = VideoColorJitter(brightness=.2)
    with pytest.raises(KeyError, match='rng'):
        jitter(dict(imgs=_window()['imgs']))
    with pytest.raises(ValueError, match='uint8'):
        jitter(dict(imgs=_window()['imgs'].astype(np.float32), rng=np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r'\(T, H, W, 3\)'):
        jitter(dict(imgs=_window()['imgs'][0], rng=np.random.default_rng(0)))
    for kwargs, match in ((dict(brightness=-.1), 'brightness must be >= 0'),
                          (dict(hue=.6), 'hue range'), (dict(contrast=(1.2, .8)), 'contrast'),
                          (dict(prob=-1), 'prob')):
        with pytest.raises(ValueError, match=match):
            VideoColorJitter(**kwargs)
