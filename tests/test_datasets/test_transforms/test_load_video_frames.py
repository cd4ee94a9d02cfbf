import cv2
import numpy as np
import pytest

from unspat_mm.datasets.transforms import LoadVideoFrames


def test_rows_of_an_in_memory_array():
    images = np.arange(5 * 4 * 6 * 3, dtype=np.uint8).reshape(5, 4, 6, 3)
    out = LoadVideoFrames()(dict(images=images, img_index=np.array([1, 1, 3])))
    np.testing.assert_array_equal(out['imgs'], images[[1, 1, 3]])
    assert 'images' not in out  # the whole array is not carried further
    assert out['img_shape'] == (4, 6) == out['ori_shape']


def test_files_are_read_as_rgb(tmp_path):
    paths = []
    for i, bgr in enumerate([(255, 0, 0), (0, 0, 255)]):
        img = np.zeros((3, 5, 3), np.uint8)
        img[:] = bgr
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], img)
    out = LoadVideoFrames()(dict(img_path=[paths[0], paths[0], paths[1]]))
    assert out['imgs'].shape == (3, 3, 5, 3)
    np.testing.assert_array_equal(out['imgs'][0, 0, 0], [0, 0, 255])  # blue in RGB
    np.testing.assert_array_equal(out['imgs'][2, 0, 0], [255, 0, 0])  # red in RGB
    with pytest.raises(FileNotFoundError, match='missing.png'):
        LoadVideoFrames()(dict(img_path=[str(tmp_path / 'missing.png')]))
    with pytest.raises(KeyError, match='img_index'):
        LoadVideoFrames()(dict())
