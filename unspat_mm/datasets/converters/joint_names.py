"""Joint-name tables of the public formats the converters read, and index tables derived
from them by name (never typed as numbers).

``HUMAN_DATA_KEYPOINTS`` is mmhuman3d's 190-point ``human_data`` convention
(``mmhuman3d/core/conventions/keypoints_mapping/human_data.py``), the layout of a HumanData
file's ``keypoints2d`` / ``keypoints3d`` (N, 190, 3 / 4). mmhuman3d names a dataset's joint
after SMPL's only when it treats them as the same point: the mocap pelvis / hips / neck /
head of Human3.6M and MPI-INF-3DHP are ``*_extra`` slots, OpenPose detections are
``*_openpose``. Later mmhuman3d versions renamed some face points (``nose_1`` ->
``right_nose_2`` ...) without moving any; only the body slots matter here.
"""
from typing import Dict, Sequence, Tuple

from unspat_mm.structures.skeleton import (H36M_JOINT_NAMES, H36M_TO_J14, HYBRIK_JOINT_NAMES,
                                           SMPL_JOINT_NAMES)

__all__ = ['HUMAN_DATA_KEYPOINTS', 'NUM_HUMAN_DATA_KEYPOINTS', 'HUMAN_DATA_APPROXIMATE',
           'HYBRIK_TO_HUMAN_DATA', 'H36M_TO_HUMAN_DATA', 'hybrik_from_human_data_indices',
           'h36m_from_human_data_indices', 'J14_FROM_H36M']


def _hand(side: str) -> list:
    fingers = ('index', 'middle', 'pinky', 'ring', 'thumb')
    return [f'{side}_{finger}_{i}' for finger in fingers for i in (1, 2, 3)]


def _openpose() -> list:
    body = ['nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
            'left_elbow', 'left_wrist', 'pelvis', 'right_hip', 'right_knee', 'right_ankle',
            'left_hip', 'left_knee', 'left_ankle', 'right_eye', 'left_eye', 'right_ear',
            'left_ear', 'left_bigtoe', 'left_smalltoe', 'left_heel', 'right_bigtoe',
            'right_smalltoe', 'right_heel']
    return [f'{name}_openpose' for name in body]


_SMPL_BODY = ['pelvis', 'left_hip', 'right_hip', 'spine_1', 'left_knee', 'right_knee',
              'spine_2', 'left_ankle', 'right_ankle', 'spine_3', 'left_foot', 'right_foot',
              'neck', 'left_collar', 'right_collar', 'head', 'left_shoulder',
              'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist']
_FACE = ([f'right_eyebrow_{i}' for i in range(1, 6)] +
         [f'left_eyebrow_{i}' for i in range(5, 0, -1)] +
         [f'nosebridge_{i}' for i in range(1, 5)] + [f'nose_{i}' for i in range(1, 6)] +
         [f'right_eye_{i}' for i in range(1, 7)] +
         [f'left_eye_{i}' for i in (4, 3, 2, 1, 6, 5)] +
         [f'mouth_{i}' for i in range(1, 13)] + [f'lip_{i}' for i in range(1, 9)] +
         [f'face_contour_{i}' for i in range(1, 18)])
HUMAN_DATA_KEYPOINTS: Tuple[str, ...] = tuple(
    _SMPL_BODY + ['jaw', 'left_eyeball', 'right_eyeball'] + _hand('left') + _hand('right') +
    ['nose', 'right_eye', 'left_eye', 'right_ear', 'left_ear'] +
    [f'{side}_{part}' for side in ('left', 'right') for part in ('bigtoe', 'smalltoe', 'heel')] +
    [f'{side}_{finger}' for side in ('left', 'right')
     for finger in ('thumb', 'index', 'middle', 'ring', 'pinky')] + _FACE +
    # points of J_regressor_extra / other datasets' skeletons
    ['right_hip_extra', 'left_hip_extra', 'neck_extra', 'headtop', 'pelvis_extra',
     'thorax_extra', 'spine_extra', 'jaw_extra', 'head_extra'] + _openpose() +
    ['spine_4_3dhp', 'left_clavicle_3dhp', 'right_clavicle_3dhp', 'left_hand_3dhp',
     'right_hand_3dhp', 'left_toe_3dhp', 'right_toe_3dhp', 'head_h36m', 'headtop_h36m',
     'head_bottom_pt', 'left_hand', 'right_hand'])
NUM_HUMAN_DATA_KEYPOINTS = 190
assert len(HUMAN_DATA_KEYPOINTS) == NUM_HUMAN_DATA_KEYPOINTS == len(set(HUMAN_DATA_KEYPOINTS))

# HybrIK joint -> its human_data slot (SMPL's names, spelt the human_data way)
HYBRIK_TO_HUMAN_DATA: Dict[str, str] = {
    name: name.replace('spine', 'spine_') for name in SMPL_JOINT_NAMES}
HYBRIK_TO_HUMAN_DATA['head_top'] = 'headtop'

# mmhuman3d's approximate groups (convert_kps(approximate=True)), in preference order:
# 2D labels accept them, 3D labels do not (the points differ by centimetres).
HUMAN_DATA_APPROXIMATE: Dict[str, Tuple[str, ...]] = {
    'pelvis': ('pelvis_extra', 'pelvis_openpose'),
    'left_hip': ('left_hip_extra', 'left_hip_openpose'),
    'right_hip': ('right_hip_extra', 'right_hip_openpose'),
    'neck': ('neck_extra', 'neck_openpose'),
    'headtop': ('headtop_h36m', ),
    'left_hand': ('left_hand_3dhp', ),
    'right_hand': ('right_hand_3dhp', ),
    **{f'{side}_{part}': (f'{side}_{part}_openpose', )
       for side in ('left', 'right') for part in ('shoulder', 'elbow', 'wrist', 'knee', 'ankle')},
}

# Human3.6M's 17 joints (skeleton.H36M_JOINT_NAMES, J_regressor_h36m's rows) -> human_data
H36M_TO_HUMAN_DATA: Dict[str, str] = {
    name: name for name in H36M_JOINT_NAMES}
H36M_TO_HUMAN_DATA.update(pelvis='pelvis_extra', left_hip='left_hip_extra',
                          right_hip='right_hip_extra', spine='spine_extra', thorax='neck_extra',
                          neck_nose='head_extra', head_top='headtop')
J14_FROM_H36M: Tuple[int, ...] = tuple(H36M_TO_J14)


def _index(name: str) -> int:
    return HUMAN_DATA_KEYPOINTS.index(name)


def hybrik_from_human_data_indices(approximate: bool
                                   ) -> Tuple[Tuple[int, ...], Tuple[Tuple[int, ...], ...]]:
    """For each of HybrIK's 29 joints, the human_data slots that may label it.

    Args:
        approximate (bool): also accept mmhuman3d's approximate slots (for 2D labels).

    Returns:
        tuple: ``(hybrik_ids, candidates)``: ``candidates[i]`` lists human_data indices for
        HybrIK joint ``hybrik_ids[i]`` in preference order (the first labelled one wins).
        The hand/toe tips (mesh vertices in HybrIK) have no slot and are absent.
    """
    ids, candidates = [], []
    for i, name in enumerate(HYBRIK_JOINT_NAMES):
        slot = HYBRIK_TO_HUMAN_DATA.get(name)
        if slot is None:
            continue
        names: Sequence[str] = (slot, ) + (HUMAN_DATA_APPROXIMATE.get(slot, ())
                                           if approximate else ())
        if name == 'head_top' and not approximate:
            continue  # a marker on the skull, not HybrIK's vertex 411
        ids.append(i)
        candidates.append(tuple(_index(n) for n in names))
    return tuple(ids), tuple(candidates)


def h36m_from_human_data_indices() -> Tuple[int, ...]:
    """human_data index of each of Human3.6M's 17 joints, in H36M_JOINT_NAMES order."""
    return tuple(_index(H36M_TO_HUMAN_DATA[name]) for name in H36M_JOINT_NAMES)
