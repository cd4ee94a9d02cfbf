"""Tiny mmhuman3d HumanData ``.npz`` files (and their images) with known truth.

Written as ``HumanData.dump`` writes them: ``np.savez_compressed`` of a dict whose dict
values (``smpl``, ``meta``) become 0-d object arrays, keypoints in the 190-slot
``human_data`` layout (compressed to the masked slots by default), with each dataset's
native joints in the slots mmhuman3d's converter uses, its image-path pattern and its
subsampling. The expected ``unspat-mm-video-v1`` rows are stated here per dataset
(which native joint labels which HybrIK joint), independently of the converter's tables.
"""
import os
import os.path as osp
from typing import Optional

import cv2
import numpy as np

from unspat_mm.structures.skeleton import H36M_JOINT_NAMES, HYBRIK_JOINT_NAMES, J14_JOINT_NAMES

__all__ = ['write_humandata_fixture', 'HUMANDATA_FIXTURE_DATASETS']

_LIMBS = [f'{s}_{p}' for s in ('left', 'right')
          for p in ('knee', 'ankle', 'shoulder', 'elbow', 'wrist')]
_H36M = ['pelvis_extra', 'left_hip_extra', 'left_knee', 'left_ankle', 'right_hip_extra',
         'right_knee', 'right_ankle', 'spine_extra', 'neck_extra', 'head_extra', 'headtop',
         'left_shoulder', 'left_elbow', 'left_wrist', 'right_shoulder', 'right_elbow',
         'right_wrist']
_MOCAP_2D = dict({n: n for n in _LIMBS}, pelvis='pelvis_extra', left_hip='left_hip_extra',
                 right_hip='right_hip_extra', neck='neck_extra', head_top='headtop')
_MOCAP_3D = {n: n for n in _LIMBS}  # pelvis/hips/neck/head of a mocap skeleton are not SMPL's
_LSP_2D = dict({n: n for n in _LIMBS}, left_hip='left_hip', right_hip='right_hip',
               head_top='headtop')
_OPENPOSE = ['right_heel', 'right_knee', 'right_hip', 'left_hip', 'left_knee', 'left_heel',
             'right_wrist', 'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow',
             'left_wrist', 'neck', 'headtop', 'nose', 'left_eye', 'right_eye', 'left_ear',
             'right_ear', 'left_bigtoe', 'right_bigtoe', 'left_smalltoe', 'right_smalltoe',
             'left_ankle', 'right_ankle']

# per dataset: native slots (2D and 3D), expected HybrIK <- slot maps, tracks, paths
_3DHP_TEST = ['headtop', 'neck_extra', 'right_shoulder', 'right_elbow', 'right_wrist',
              'left_shoulder', 'left_elbow', 'left_wrist', 'right_hip_extra', 'right_knee',
              'right_ankle', 'left_hip_extra', 'left_knee', 'left_ankle', 'pelvis_extra',
              'spine_extra', 'head_extra']
_SPECS = {
    'h36m': dict(
        slots2d=_H36M, slots3d=_H36M, map2d=_MOCAP_2D, map3d=_MOCAP_3D, tracks=1,
        frame=lambda i: 1 + 5 * i, seq='S1/images/S1_Directions_1.54138969',
        path=lambda f: f'S1/images/S1_Directions_1.54138969/S1_Directions_1.54138969_'
                       f'{f:06d}.jpg'),
    'mpi_inf_3dhp': dict(
        slots2d=_3DHP_TEST, slots3d=_3DHP_TEST, map2d=_MOCAP_2D, map3d=_MOCAP_3D, tracks=1,
        frame=lambda i: 1 + i,
        seq='mpi_inf_3dhp_test_set/TS1/imageSequence',
        path=lambda f: f'mpi_inf_3dhp_test_set/TS1/imageSequence/img_{f:06d}.jpg'),
    '3dpw': dict(slots2d=[], map2d={}, map3d={}, tracks=2, frame=lambda i: i, smpl=True,
                 seq='imageFiles/fixture_seq_00',
                 path=lambda f: f'imageFiles/fixture_seq_00/image_{f:05d}.jpg'),
    'pennaction': dict(
        slots2d=['headtop', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
                 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
                 'right_knee', 'left_ankle', 'right_ankle'],
        map2d=_LSP_2D, map3d={}, tracks=1, frame=lambda i: 1 + 10 * i, seq='frames/0001',
        path=lambda f: f'frames/0001/{f:06d}.jpg'),
    'posetrack': dict(
        slots2d=['nose', 'head_bottom_pt', 'headtop', 'left_ear', 'right_ear'] + [
            f'{s}_{p}' for p in ('shoulder', 'elbow', 'wrist', 'hip', 'knee', 'ankle')
            for s in ('left', 'right')],
        map2d=_LSP_2D, map3d={}, tracks=2, frame=lambda i: i,
        seq='images/train/000001_bonn_train',
        path=lambda f: f'images/train/000001_bonn_train/{f:06d}.jpg'),
    'insta_variety': dict(
        slots2d=[n if n == 'headtop' else f'{n}_openpose' for n in _OPENPOSE],
        map2d=dict({n: f'{n}_openpose' for n in _LIMBS + ['left_hip', 'right_hip', 'neck']},
                   head_top='headtop'),
        map3d={}, tracks=1, frame=lambda i: 3 + i, seq='fixture_video_00',
        path=lambda f: f'fixture_video_00/{f}', suffix='.jpg'),
}
HUMANDATA_FIXTURE_DATASETS = tuple(_SPECS)
# Human3.6M's 17 joints (and hence J14) in the h36m / 3dhp slots
_H36M_SLOT = dict(zip(H36M_JOINT_NAMES, _H36M))
_J14_SLOT = dict({n: n for n in _LIMBS}, left_hip='left_hip_extra',
                 right_hip='right_hip_extra', neck='neck_extra', head_top='headtop')


def write_humandata_fixture(path: str, dataset: str = 'h36m', num_frames: int = 5,
                            seed: int = 0, image_root: Optional[str] = None,
                            compressed: bool = True, image_size=(64, 64)) -> dict:
    """Write a HumanData ``.npz`` for ``dataset`` and its frames; return the truth.

    Args:
        path (str): the ``.npz`` to write.
        dataset (str): one of :data:`HUMANDATA_FIXTURE_DATASETS`. '3dpw' and 'posetrack'
            hold two people per frame (no track ids, as in mmhuman3d's files).
            Defaults to 'h36m'.
        image_root (str, optional): where the images go; the converted ``img_path`` is
            relative to it. Defaults to None (the folder of ``path``).
        compressed (bool): store keypoints compressed to their mask
            (``__keypoints_compressed__``), as mmhuman3d's converters do.
            Defaults to True.

    Returns:
        dict: ``path``, ``image_root``, ``dataset``, ``arrays``: the expected
        ``unspat-mm-video-v1`` fields, in the file's row order (``bbox`` for the default
        ``bbox_source='keypoints'``), and ``bbox_file``: the file's boxes as (cx, cy, w, h).
    """
    from unspat_mm.datasets.converters.joint_names import HUMAN_DATA_KEYPOINTS
    spec = _SPECS[dataset]
    rng = np.random.default_rng(seed)
    image_root = image_root or osp.dirname(osp.abspath(path))
    num_tracks, num = spec['tracks'], num_frames * spec['tracks']
    # mmhuman3d's order: 3DPW actor by actor, PoseTrack frame by frame
    track = (np.repeat(np.arange(num_tracks), num_frames) if dataset == '3dpw'
             else np.tile(np.arange(num_tracks), num_frames))
    step = (np.tile(np.arange(num_frames), num_tracks) if dataset == '3dpw'
            else np.repeat(np.arange(num_frames), num_tracks))
    frames = np.array([spec['frame'](i) for i in step])
    names2d, names3d = spec['slots2d'], spec.get('slots3d', [])
    centre = np.stack([20. + 24 * track + step, 32. + step % 2], axis=1)
    kp2d = centre[:, None] + rng.uniform(-7, 7, (num, len(names2d), 2))
    conf2d = np.ones((num, len(names2d)))
    if dataset == 'posetrack':  # unlabelled joints: confidence 0, as PoseTrack has them
        conf2d[1, names2d.index('left_wrist')] = conf2d[2, names2d.index('right_knee')] = 0
    kp3d = rng.normal(0, .3, (num, len(names3d), 3))
    if names3d:
        kp3d -= kp3d[:, [names3d.index('pelvis_extra')]]  # mmhuman3d stores them root-centred
    if names2d:
        lo = np.where(conf2d[..., None] > 0, kp2d, np.inf).min(1)
        hi = np.where(conf2d[..., None] > 0, kp2d, -np.inf).max(1)
    else:
        lo, hi = centre - (7, 15), centre + (7, 15)
    box_c, box_wh = (lo + hi) / 2, 1.2 * (hi - lo)
    hd = dict(__key_strict__=False, __temporal_len__=num, __keypoints_compressed__=compressed,
              image_path=[spec['path'](f) for f in frames], config=dataset,
              bbox_xywh=np.concatenate([box_c - box_wh / 2, box_wh, np.ones((num, 1))], 1))
    for key, names, values in (('keypoints2d', names2d, np.concatenate(
            [kp2d, conf2d[..., None]], -1)), ('keypoints3d', names3d, np.concatenate(
                [kp3d, np.ones((num, len(names3d), 1))], -1))):
        if not names:
            continue
        slots = [HUMAN_DATA_KEYPOINTS.index(n) for n in names]
        full = np.zeros((num, len(HUMAN_DATA_KEYPOINTS), values.shape[-1]))
        full[:, slots] = values
        mask = np.zeros(len(HUMAN_DATA_KEYPOINTS), np.uint8)
        mask[slots] = 1
        hd[key], hd[f'{key}_mask'] = (full[:, np.sort(slots)] if compressed else full), mask
    truth = _truth(spec, dataset, num, kp2d, conf2d, kp3d, track, frames, box_c, box_wh)
    if spec.get('smpl'):
        smpl = dict(global_orient=rng.normal(0, 1, (num, 3)),
                    body_pose=rng.normal(0, .2, (num, 23, 3)), betas=rng.normal(0, 1, (num, 10)))
        hd['smpl'] = smpl
        hd['meta'] = dict(gender=np.array(['m', 'f'])[track])
        truth.update(theta=np.concatenate([smpl['global_orient'],
                                           smpl['body_pose'].reshape(num, 69)], 1),
                     betas=smpl['betas'], smpl_valid=np.ones(num),
                     gender=np.array(['male', 'female'])[track])
    if dataset == 'insta_variety':
        hd['video_path'], hd['frame_idx'] = [spec['seq']] * num, frames
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    np.savez_compressed(path, **hd)
    for i, img in enumerate(truth['img_path']):
        target = osp.join(image_root, img)
        if not osp.exists(target):
            os.makedirs(osp.dirname(target), exist_ok=True)
            cv2.imwrite(target, np.full(tuple(image_size) + (3, ), 40 + 10 * (i % 16), np.uint8))
    bbox_file = truth.pop('bbox_file')
    return dict(path=path, image_root=image_root, dataset=dataset, arrays=truth,
                bbox_file=bbox_file)


def _truth(spec, dataset, num, kp2d, conf2d, kp3d, track, frames, box_c, box_wh) -> dict:
    k = len(HYBRIK_JOINT_NAMES)
    out = dict(keypoints2d=np.zeros((num, k, 2)), keypoints2d_valid=np.zeros((num, k)),
               keypoints3d=np.zeros((num, k, 3)), keypoints3d_valid=np.zeros((num, k)),
               theta=np.zeros((num, 72)), betas=np.zeros((num, 10)), smpl_valid=np.zeros(num),
               valid=np.ones(num, bool), bbox=np.concatenate([box_c, box_wh], 1),
               frame_index=frames.astype(np.int64))
    for name, slot in spec['map2d'].items():
        j, s = HYBRIK_JOINT_NAMES.index(name), spec['slots2d'].index(slot)
        out['keypoints2d_valid'][:, j] = conf2d[:, s] > 0
        out['keypoints2d'][:, j] = kp2d[:, s] * (conf2d[:, s, None] > 0)
    names3d = spec.get('slots3d', [])
    for name, slot in spec['map3d'].items():
        j, s = HYBRIK_JOINT_NAMES.index(name), names3d.index(slot)
        out['keypoints3d_valid'][:, j] = 1
        out['keypoints3d'][:, j] = kp3d[:, s] - kp3d[:, names3d.index('pelvis_extra')]
    if dataset == 'h36m':
        j14 = np.stack([kp3d[:, names3d.index(_J14_SLOT[n])] for n in J14_JOINT_NAMES], 1)
        hips = [names3d.index('left_hip_extra'), names3d.index('right_hip_extra')]
        out['gt_joints14'] = j14 - kp3d[:, hips].mean(1, keepdims=True)
    if dataset == 'mpi_inf_3dhp':
        h17 = np.stack([kp3d[:, names3d.index(_H36M_SLOT[n])] for n in H36M_JOINT_NAMES], 1)
        out['gt_joints17'] = h17 - kp3d[:, [names3d.index('pelvis_extra')]]
    # boxes: tight around the valid expected 2D joints, the file's where fewer than 2
    kps = np.where(out['keypoints2d_valid'][..., None] > 0, out['keypoints2d'], np.nan)
    enough = out['keypoints2d_valid'].sum(1) >= 2
    with np.errstate(invalid='ignore'):
        lo, hi = np.nanmin(kps[enough], 1), np.nanmax(kps[enough], 1)
    out['bbox_file'] = out['bbox'].copy()
    out['bbox'][enough] = np.concatenate([(lo + hi) / 2, hi - lo], 1)
    seq = np.full(num, spec['seq'], dtype=object)
    if spec['tracks'] > 1:
        seq = np.array([f'{spec["seq"]}/track{t}' for t in track], dtype=object)
    out['sequence_id'] = seq.astype(str)
    out['img_path'] = np.array([spec['path'](f) + spec.get('suffix', '') for f in frames])
    return out


