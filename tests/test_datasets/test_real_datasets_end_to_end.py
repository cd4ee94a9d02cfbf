"""For each dataset: a fixture in the PUBLIC format (3DPW sequence pickles, mmhuman3d
HumanData) -> the converter -> the dataset class -> one window whose crops, joints, SMPL
parameters and validity flags equal what the fixture encoded (its stated truth, computed
by the fixture writer, not by the converter), under each dataset's label policy."""
import os.path as osp

import cv2
import numpy as np
import pytest

from unspat_mm.datasets import (H36MDataset, InstaVarietyDataset, MPIINF3DHPDataset,
                                PennActionDataset, PoseTrackDataset, PW3DDataset)
from unspat_mm.datasets.converters.humandata import convert_humandata_file
from unspat_mm.datasets.converters.pw3d import convert_pw3d
from unspat_mm.testing import write_humandata_fixture, write_pw3d_fixture

CROP, PADDING, T = 48, 1.2, 4
# case -> (dataset class, carries 3D joints, carries SMPL, evaluation field)
CASES = {
    '3dpw_pickles': (PW3DDataset, True, True, None),
    '3dpw': (PW3DDataset, True, True, None),
    'h36m': (H36MDataset, True, True, 'gt_joints14'),
    'mpi_inf_3dhp': (MPIINF3DHPDataset, True, True, 'gt_joints17'),
    'pennaction': (PennActionDataset, False, False, None),
    'posetrack': (PoseTrackDataset, False, False, None),
    'insta_variety': (InstaVarietyDataset, False, False, None),
}


def convert(case, tmp_path):
    """Write the public fixture and convert it; returns (ann_file, image root, truth)."""
    if case == '3dpw_pickles':
        fixture = write_pw3d_fixture(str(tmp_path / '3dpw'), splits=('test', ), num_frames=6)
        out = convert_pw3d(str(tmp_path / '3dpw'), str(tmp_path / 'ann'), splits=('test', ))
        return out['test'], str(tmp_path / '3dpw'), fixture['arrays']['test']
    fixture = write_humandata_fixture(str(tmp_path / 'hd' / f'{case}.npz'), case, num_frames=5,
                                      image_root=str(tmp_path / 'images'))
    ann = str(tmp_path / 'ann' / f'{case}.npz')
    convert_humandata_file(fixture['path'], ann, case, image_root=str(tmp_path / 'images'))
    return ann, str(tmp_path / 'images'), fixture['arrays']


def crop_by_hand(img, bbox):
    """The crop of a (cx, cy, w, h) box padded by PADDING and made square, written out
    here (continuous coordinates; OpenCV's pixel centres are at integers)."""
    cx, cy, w, h = bbox
    scale = CROP / (max(w, h) * PADDING)
    matrix = np.array([[scale, 0, scale * (.5 - cx) + CROP / 2 - .5],
                       [0, scale, scale * (.5 - cy) + CROP / 2 - .5]])
    return cv2.warpAffine(img, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)), scale


@pytest.mark.parametrize('case', sorted(CASES))
def test_public_fixture_to_window(case, tmp_path):
    cls, has_3d, has_smpl, eval_key = CASES[case]
    ann_file, image_root, truth = convert(case, tmp_path)
    dataset = cls(ann_file=ann_file, data_root=image_root, num_frames=T,
                  pipeline=[dict(type='LoadVideoFrames'),
                            dict(type='VideoBBoxCrop', input_size=CROP, padding=PADDING)])
    order = np.lexsort((truth['frame_index'], truth['sequence_id']))
    ref = {k: np.asarray(v)[order] for k, v in truth.items()}
    assert len(dataset) == len(order)  # stride 1: one window per (track, frame)
    out = dataset[1]  # the first track's second frame; rows [0, 0, 1, 2]
    rows = np.array([0, 0, 1, 2])
    assert ref['sequence_id'][2] == ref['sequence_id'][0]  # >= 3 frames in the track
    assert (out['sequence_id'], out['frame_index']) == (ref['sequence_id'][1],
                                                        ref['frame_index'][1])
    assert out['window_frame_indices'].tolist() == ref['frame_index'][rows].tolist()
    assert out['valid'] == bool(ref['valid'][1])
    for t, row in enumerate(rows):
        img = cv2.cvtColor(cv2.imread(osp.join(image_root, ref['img_path'][row])),
                           cv2.COLOR_BGR2RGB)
        expected, scale = crop_by_hand(img, ref['bbox'][row])
        np.testing.assert_allclose(out['imgs'][t], expected, atol=1)
        kp = (ref['keypoints2d'][row] - ref['bbox'][row][:2]) * scale + CROP / 2
        inside = ((kp >= 0) & (kp < CROP)).all(1)
        lab = ref['keypoints2d_valid'][row] > 0
        np.testing.assert_allclose(out['keypoints2d'][t][lab], kp[lab], atol=1e-3)
        np.testing.assert_array_equal(out['keypoints2d_valid'][t], lab * inside)
    # HumanData's 3DPW fixture holds SMPL only; every other one labels joints
    assert (ref['keypoints2d_valid'][rows] > 0).any() == (case != '3dpw')
    np.testing.assert_array_equal(out['keypoints3d_valid'],
                                  ref['keypoints3d_valid'][rows] * has_3d)
    np.testing.assert_allclose(out['keypoints3d'], ref['keypoints3d'][rows] * has_3d,
                               atol=1e-5)
    assert ref['keypoints3d_valid'][rows].any() == (has_3d and case != '3dpw')
    smpl_valid = ref.get('smpl_valid', np.zeros(len(order)))[rows] * has_smpl
    np.testing.assert_array_equal(out['smpl_valid'], smpl_valid)
    if has_smpl and smpl_valid.any():
        np.testing.assert_allclose(out['theta'], ref['theta'][rows] * smpl_valid[:, None],
                                   atol=1e-5)
        np.testing.assert_allclose(out['betas'], ref['betas'][rows] * smpl_valid[:, None],
                                   atol=1e-5)
    assert smpl_valid.any() == case.startswith('3dpw')  # the fixtures' SMPL: 3DPW only
    if not smpl_valid.any():
        assert not out['theta'].any() and not out['betas'].any()
    for key in ('gt_joints14', 'gt_joints17'):
        assert (key in out) == (key == eval_key)
    if eval_key:
        np.testing.assert_allclose(out[eval_key], ref[eval_key][rows], atol=1e-5)
