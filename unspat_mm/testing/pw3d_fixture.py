"""A tiny 3DPW download (``sequenceFiles/<split>/*.pkl`` + ``imageFiles/``) with known truth.

The truth is chosen in the camera first (joints, global orientation), then carried to
the world with a random camera pose per frame, the way 3DPW stores it; the expected
annotations are computed here from the camera-frame choices, not by the converter's code.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from .py2_pickle import dumps_py2

__all__ = ['write_pw3d_fixture', 'PW3D_FIXTURE_FOCAL']

PW3D_FIXTURE_FOCAL = 60.
_GENDER_CODES = (('m', 'male'), ('f', 'female'))


def _rest_skeleton(rng: np.random.Generator) -> np.ndarray:
    """(24, 3) pelvis-relative joints of a standing figure (metres, y down, as a camera
    sees it), jittered: only consistency of the chain matters here."""
    base = np.array([[0, 0, 0], [.09, .08, 0], [-.09, .08, 0], [0, -.1, 0], [.1, .45, 0],
                     [-.1, .45, 0], [0, -.25, 0], [.1, .85, 0], [-.1, .85, 0], [0, -.3, 0],
                     [.1, .9, -.1], [-.1, .9, -.1], [0, -.5, 0], [.07, -.42, 0],
                     [-.07, -.42, 0], [0, -.62, 0], [.18, -.42, 0], [-.18, -.42, 0],
                     [.2, -.17, 0], [-.2, -.17, 0], [.22, .07, 0], [-.22, .07, 0],
                     [.23, .15, 0], [-.23, .15, 0]])
    return base + rng.normal(0, .01, base.shape)


def _write_frame(path: str, size, points: Sequence[np.ndarray], shade: int) -> None:
    height, width = size
    img = np.full((height, width, 3), shade, np.uint8)
    for k, pts in enumerate(points):
        for x, y in pts:
            if 0 <= x < width and 0 <= y < height:
                img[int(y), int(x)] = (255, 40 + 100 * k, 0)
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f'could not write {path}')


def write_pw3d_fixture(root: str, splits: Sequence[str] = ('test', ), num_sequences: int = 1,
                       num_frames: int = 6, num_actors: int = 2, seed: int = 0,
                       image_size=(64, 64), invalid: Optional[Dict[int, Sequence[int]]] = None
                       ) -> dict:
    """Write a 3DPW-layout folder at ``root`` and return what its conversion must give.

    Each sequence ``fixture_<split>_<j>`` has ``num_actors`` actors over ``num_frames``
    frames, Python-2-style pickles (protocol 2, 8-bit strings, ``numpy.core`` names) with
    every field of the 3DPW readme (60 Hz arrays, clothing, textures as tiny placeholders),
    and ``image_size`` JPEGs with the actors' joints drawn.

    Args:
        root (str): output folder (created).
        invalid (dict, optional): actor -> frames whose ``campose_valid`` is False.
            Defaults to None (actor 0 its last frame, actor 1 its first).

    Returns:
        dict: ``root``; ``files`` {split: [pickle paths]}; ``sequences`` {split: [names]};
        ``arrays`` {split: dict of ``unspat-mm-video-v1`` fields in converter row order
        (sequence file, actor, frame)}; ``cam_intrinsics`` (3, 3);
        ``joints_cam`` {split: (rows, 24, 3)} the camera-frame joints (metres).
    """
    rng = np.random.default_rng(seed)
    height, width = image_size
    K = np.array([[PW3D_FIXTURE_FOCAL, 0, width / 2], [0, PW3D_FIXTURE_FOCAL, height / 2],
                  [0, 0, 1.]])
    if invalid is None:
        invalid = {0: [num_frames - 1], 1: [0]}
    out = dict(root=root, files={}, sequences={}, arrays={}, cam_intrinsics=K, joints_cam={})
    for split in splits:
        folder = osp.join(root, 'sequenceFiles', split)
        os.makedirs(folder, exist_ok=True)
        out['files'][split], out['sequences'][split] = [], []
        rows, joints_cam_all = {k: [] for k in _TRUTH_KEYS}, []
        for j in range(num_sequences):
            name = f'fixture_{split}_{j:02d}'
            seq, truth, joints_cam = _sequence(rng, name, num_frames, num_actors, K, invalid,
                                               root, image_size)
            path = osp.join(folder, f'{name}.pkl')
            with open(path, 'wb') as f:
                f.write(dumps_py2(seq))
            out['files'][split].append(path)
            out['sequences'][split].append(name)
            for key in _TRUTH_KEYS:
                rows[key].append(truth[key])
            joints_cam_all.append(joints_cam)
        out['arrays'][split] = {k: np.concatenate(v) for k, v in rows.items()}
        out['joints_cam'][split] = np.concatenate(joints_cam_all)
    return out


_TRUTH_KEYS = ('img_path', 'sequence_id', 'frame_index', 'bbox', 'keypoints2d',
               'keypoints2d_valid', 'keypoints3d', 'keypoints3d_valid', 'theta', 'betas',
               'smpl_valid', 'valid', 'gender')


def _sequence(rng, name, num, num_actors, K, invalid, root, image_size):
    cam_rot = Rotation.from_rotvec(rng.normal(0, .6, (num, 3))).as_matrix()
    cam_t = rng.normal(0, 1.5, (num, 3))
    seq = dict(sequence=name, betas=[], poses=[], trans=[], poses_60Hz=[], trans_60Hz=[],
               betas_clothed=[], v_template_clothed=[], genders=[], texture_maps=[],
               poses2d=[], jointPositions=[], campose_valid=[],
               img_frame_ids=np.arange(num) * 2, cam_intrinsics=K,
               cam_poses=np.tile(np.eye(4), (num, 1, 1)))
    seq['cam_poses'][:, :3, :3], seq['cam_poses'][:, :3, 3] = cam_rot, cam_t
    truth = {k: [] for k in _TRUTH_KEYS}
    joints_all, uv_all = [], []
    for a in range(num_actors):
        # the camera-frame truth: root path, joints, orientation
        root_cam = np.array([-.8 + 1.6 * a / max(num_actors - 1, 1), .1, 5.]) + \
            np.cumsum(rng.normal(0, .03, (num, 3)), axis=0)
        spin = Rotation.from_rotvec(rng.normal(0, .15, (num, 3))).as_matrix()
        joints_cam = root_cam[:, None] + np.einsum('nij,kj->nki', spin, _rest_skeleton(rng))
        orient_cam = Rotation.from_rotvec(rng.normal(0, .7, (num, 3)))
        body_pose = rng.normal(0, .2, (num, 69))
        betas = rng.normal(0, 1, 10 + 6 * (a % 2))  # 3DPW's may carry more than 10
        valid = np.ones(num, bool)
        valid[[f for f in invalid.get(a, ()) if f < num]] = False
        # ... carried into the world as 3DPW stores it: x_cam = R x_world + t
        joints_world = np.einsum('nji,nkj->nki', cam_rot, joints_cam - cam_t[:, None])
        orient_world = Rotation.from_matrix(np.transpose(cam_rot, (0, 2, 1)) @
                                            orient_cam.as_matrix())
        poses = np.concatenate([orient_world.as_rotvec(), body_pose], axis=1)
        code, gender = _GENDER_CODES[a % 2]
        seq['betas'].append(betas)
        seq['poses'].append(poses)
        seq['trans'].append(joints_world[:, 0])
        seq['poses_60Hz'].append(np.repeat(poses, 2, axis=0))
        seq['trans_60Hz'].append(np.repeat(joints_world[:, 0], 2, axis=0))
        seq['betas_clothed'].append(betas[:10] + .1)
        seq['v_template_clothed'].append(rng.normal(0, .1, (8, 3)))
        seq['genders'].append(code)
        seq['texture_maps'].append(np.zeros((2, 2, 3), np.uint8))
        seq['poses2d'].append(rng.uniform(0, 64, (num, 3, 18)))
        seq['jointPositions'].append(joints_world.reshape(num, 72))
        seq['campose_valid'].append(valid)
        # expected annotations, from the camera-frame choices
        uv = PW3D_FIXTURE_FOCAL * joints_cam[..., :2] / joints_cam[..., 2:] + K[:2, 2]
        lo, hi = uv.min(1), uv.max(1)
        kp2d, kp3d = np.zeros((num, 29, 2)), np.zeros((num, 29, 3))
        # joints of frames without a valid camera pose are zeroed (and invalid)
        kp2d[:, :24] = uv * valid[:, None, None]
        kp3d[:, :24] = (joints_cam - joints_cam[:, :1]) * valid[:, None, None]
        flags = np.zeros((num, 29))
        flags[:, :24] = valid[:, None]
        truth['img_path'].append(np.array([f'imageFiles/{name}/image_{i:05d}.jpg'
                                           for i in range(num)]))
        truth['sequence_id'].append(np.full(num, f'{name}/actor{a}'))
        truth['frame_index'].append(np.arange(num))
        truth['bbox'].append(np.concatenate([(lo + hi) / 2, hi - lo], axis=1))
        truth['keypoints2d'].append(kp2d)
        truth['keypoints2d_valid'].append(flags)
        truth['keypoints3d'].append(kp3d)
        truth['keypoints3d_valid'].append(flags.copy())
        truth['theta'].append(np.concatenate([orient_cam.as_rotvec(), body_pose], axis=1))
        truth['betas'].append(np.tile(betas[:10], (num, 1)))
        truth['smpl_valid'].append(valid.astype(float))
        truth['valid'].append(valid)
        truth['gender'].append(np.full(num, gender))
        joints_all.append(joints_cam)
        uv_all.append(uv)
    for i in range(num):
        _write_frame(osp.join(root, 'imageFiles', name, f'image_{i:05d}.jpg'), image_size,
                     [uv[i] for uv in uv_all], shade=60 + 20 * (i % 8))
    return (seq, {k: np.concatenate(v) for k, v in truth.items()},
            np.concatenate(joints_all))
