"""The fixture writers reproduce the public formats (checked without the converters)."""
import pickle
import pickletools

import cv2
import numpy as np
import pytest

from unspat_mm.testing import write_humandata_fixture, write_pw3d_fixture
from unspat_mm.utils.safe_unpickle import load_npz_safely, safe_load_pickle


def test_pw3d_fixture_is_a_python2_3dpw_pickle(tmp_path):
    truth = write_pw3d_fixture(str(tmp_path), num_frames=4, num_actors=2, seed=1)
    path = truth['files']['test'][0]
    blob = open(path, 'rb').read()
    opcodes = {op.name for op, _, _ in pickletools.genops(blob)}
    assert blob[:2] == b'\x80\x02' and 'SHORT_BINSTRING' in opcodes
    assert 'BINUNICODE' not in opcodes and b'numpy.core.multiarray' in blob
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(blob)  # like the real files: needs encoding='latin1'
    seq = safe_load_pickle(path)
    readme_fields = {'sequence', 'betas', 'poses', 'trans', 'poses_60Hz', 'trans_60Hz',
                     'betas_clothed', 'v_template_clothed', 'genders', 'texture_maps',
                     'poses2d', 'jointPositions', 'img_frame_ids', 'cam_poses',
                     'campose_valid', 'cam_intrinsics'}
    assert set(seq) == readme_fields and seq['genders'] == ['m', 'f']
    assert seq['poses'][0].shape == (4, 72) and seq['poses2d'][1].shape == (4, 3, 18)
    # world -> camera with cam_poses gives back the joints chosen in the camera
    world = np.stack(seq['jointPositions']).reshape(2, 4, 24, 3)
    cam = np.einsum('nij,ankj->anki', seq['cam_poses'][:, :3, :3], world) + \
        seq['cam_poses'][None, :, None, :3, 3]
    np.testing.assert_allclose(cam.reshape(8, 24, 3), truth['joints_cam']['test'], atol=1e-9)
    proj = truth['joints_cam']['test'] @ truth['cam_intrinsics'].T
    uv = proj[..., :2] / proj[..., 2:]
    assert (uv > 0).all() and (uv < 64).all()  # everyone inside the 64x64 frames
    want = truth['arrays']['test']
    np.testing.assert_allclose(want['keypoints2d'][want['valid'], :24], uv[want['valid']])
    assert not want['keypoints2d'][~want['valid']].any()
    img = cv2.imread(str(tmp_path / 'imageFiles' / 'fixture_test_00' / 'image_00003.jpg'))
    assert img.shape == (64, 64, 3)


@pytest.mark.parametrize('compressed', [True, False])
def test_humandata_fixture_layout(tmp_path, compressed):
    truth = write_humandata_fixture(str(tmp_path / 'pw3d_test.npz'), '3dpw', num_frames=4,
                                    compressed=compressed)
    with np.load(truth['path'], allow_pickle=False) as f:
        assert f['image_path'].dtype.kind == 'U' and f['bbox_xywh'].shape == (8, 5)
        assert bool(f['__keypoints_compressed__']) is compressed
        with pytest.raises(ValueError, match='allow_pickle'):
            f['smpl']  # dicts are pickled 0-d object arrays, as HumanData.dump leaves them
    arrays = load_npz_safely(truth['path'])
    assert arrays['smpl'].shape == () and arrays['smpl'].dtype == object
    assert arrays['smpl'].item()['body_pose'].shape == (8, 23, 3)
    assert (tmp_path / 'imageFiles' / 'fixture_seq_00' / 'image_00003.jpg').is_file()
    h36m = write_humandata_fixture(str(tmp_path / 'h36m.npz'), 'h36m', num_frames=2,
                                   compressed=compressed)
    with np.load(h36m['path']) as f:
        assert f['keypoints3d'].shape == ((2, 17, 4) if compressed else (2, 190, 4))
        assert f['keypoints3d_mask'].sum() == 17
