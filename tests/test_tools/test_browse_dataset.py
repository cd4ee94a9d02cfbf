"""tools/misc/browse_dataset.py: the PNG is the pipeline's crops, tiled, with the skeleton
drawn exactly where the ground-truth keypoints are, and nothing is overwritten."""
import math

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from tools.misc import browse_dataset as browse
from unspat_mm.registry import DATASETS
from unspat_mm.structures.skeleton import HYBRIK_PARENTS


@pytest.fixture(scope='module')
def synthetic_options(tmp_path_factory, standin_model_dir):
    cache = tmp_path_factory.mktemp('synthetic_cache')
    return [f'train_dataloader.dataset.{k}' for k in (
        f'cache_dir={cache}', 'preset=tiny', f'body_model_dir={standin_model_dir}')]


def _segment_distance(points, a, b):
    """Distance of (N, 2) points to the segment a-b."""
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def test_draw_skeleton_places_bones_and_dots():
    img = np.zeros((40, 40, 3), np.uint8)
    kp = np.zeros((29, 2))
    valid = np.zeros(29)
    kp[0], kp[1], kp[4] = (10.5, 10.5), (30.5, 10.5), (30.5, 30.5)  # pelvis, l_hip, l_knee
    valid[[0, 1]] = 1  # the knee is labelled but invalid: no knee dot, no thigh
    out = browse.draw_skeleton(img, kp, valid, radius=2)
    changed = np.argwhere(out.any(-1))[:, ::-1] + .5  # (x, y) pixel centres
    assert _segment_distance(changed, kp[0], kp[1]).max() <= 2.5  # only the hip bone + dots
    assert tuple(out[10, 10]) == browse.SIDE_COLOURS['centre']  # the pelvis dot
    assert tuple(out[10, 30]) == browse.SIDE_COLOURS['left']  # the left-hip dot
    assert tuple(out[10, 20]) == browse.SIDE_COLOURS['left']  # mid-bone: the hip's colour
    assert not out[25:, 25:].any()  # nothing at the invalid knee


def test_png_is_the_crops_with_the_skeleton(tmp_path, synthetic_options):
    out_dir = tmp_path / 'png'
    paths = browse.main(['configs/unspat_synthetic.py', '--output-dir', str(out_dir),
                         '--max-windows', '2', '--cfg-options', *synthetic_options])
    assert len(paths) == 2 and all(p.startswith(str(out_dir) + '/train_') for p in paths)
    # the same windows, through the same pipeline cut before packing (augmentation is a
    # function of the draw id, so these are exactly the crops the tool drew on)
    cfg = Config.fromfile('configs/unspat_synthetic.py')
    cfg.merge_from_dict(dict(o.split('=', 1) for o in synthetic_options))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    browse.stop_before_packing(dataset)
    draw_ids = [int(p.split('/')[-1].split('_')[1]) for p in paths]
    assert draw_ids == [0, len(dataset) - 1]
    checked = own = 0
    for path, draw_id in zip(paths, draw_ids):
        results = dataset[draw_id]
        imgs, kps = results['imgs'], results['keypoints2d']
        valid = results['keypoints2d_valid'] > 0
        num, size = len(imgs), imgs.shape[1]
        assert (num, size) == (cfg.num_frames, cfg.input_size[0])  # the config's T and crop
        png = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        cols = math.ceil(math.sqrt(num))
        assert png.shape == (math.ceil(num / cols) * size, cols * size, 3)
        for t in range(num):
            r, c = divmod(t, cols)
            tile = png[r * size:(r + 1) * size, c * size:(c + 1) * size]
            # every changed pixel lies on a bone between two valid joints or on a dot
            changed = np.argwhere((tile != imgs[t]).any(-1))
            if t == results['center_index']:  # the target frame's yellow outline
                edge = (changed == 0).any(1) | (changed == size - 1).any(1)
                assert (tile[0] == browse.TARGET_COLOUR).all()
                changed = changed[~edge]
            xy = changed[:, ::-1] + .5
            near = np.full(len(xy), np.inf)
            for child, parent in enumerate(HYBRIK_PARENTS):
                if parent >= 0 and valid[t, child] and valid[t, parent]:
                    near = np.minimum(near, _segment_distance(xy, kps[t, parent], kps[t, child]))
            for j in np.flatnonzero(valid[t]):
                near = np.minimum(near, np.linalg.norm(xy - kps[t, j], axis=1))
            assert len(xy) > 20 and near.max() <= 3.0, (path, t)
            # each valid joint's pixel is a dot: its own, or a nearby joint's drawn later
            for j in np.flatnonzero(valid[t]):
                x, y = np.round(kps[t, j] - .5).astype(int)
                if 0 <= x < size and 0 <= y < size:
                    close = [k for k in np.flatnonzero(valid[t])
                             if np.linalg.norm(kps[t, k] - kps[t, j]) <= 3.5]
                    assert tuple(tile[y, x]) in {browse.joint_colour(k) for k in close}
                    own += tuple(tile[y, x]) == browse.joint_colour(j)
                    checked += 1
    assert checked > 100 and own > .7 * checked


def test_refuses_to_overwrite(tmp_path, synthetic_options, capsys):
    args = ['configs/unspat_synthetic.py', '--output-dir', str(tmp_path), '--max-windows', '1',
            '--cfg-options', *synthetic_options]
    [path] = browse.main(args)
    before = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(b'mine')
    with pytest.raises(SystemExit) as info:
        browse.main(args)
    assert info.value.code == 1
    assert 'already exists (1 of the outputs do); pass --overwrite' in capsys.readouterr().err
    assert open(path, 'rb').read() == b'mine'
    assert browse.main(args + ['--overwrite']) == [path]
    assert open(path, 'rb').read() == before  # same window, same augmentation
