"""Joint sets of SMPL, HybrIK's 29-joint skeleton, Human3.6M and the 14 evaluation joints.

All index tables in one place; everything else imports them from here.
"""
SMPL_JOINT_NAMES = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee', 'spine2',
    'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot', 'neck',
    'left_collar', 'right_collar', 'head', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hand', 'right_hand')
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                20, 21)
NUM_SMPL_JOINTS = 24

# HybrIK's 29 joints: the 24 SMPL joints plus 5 leaf points read off mesh vertices.
LEAF_NAMES = ('head_top', 'left_hand_tip', 'right_hand_tip', 'left_toe', 'right_toe')
LEAF_VERTEX_IDS = (411, 2445, 5905, 3216, 6617)
LEAF_PARENTS = (15, 22, 23, 10, 11)
HYBRIK_JOINT_NAMES = SMPL_JOINT_NAMES + LEAF_NAMES
HYBRIK_PARENTS = SMPL_PARENTS + LEAF_PARENTS
NUM_HYBRIK_JOINTS = 29

# The child whose bone direction defines each SMPL joint's swing in the IK. The root
# (pelvis) is solved from all three of its children; spine3 (9) has three children
# and uses the neck (12), the bone its twist is defined about.
ROOT_CHILDREN = (1, 2, 3)
IK_CHILD = (-1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 27, 28, 15, 16, 17, 24, 18, 19, 20, 21, 22,
            23, 25, 26)

# Left/right pairs, for horizontal flipping.
SMPL_FLIP_PAIRS = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21),
                   (22, 23))
HYBRIK_FLIP_PAIRS = SMPL_FLIP_PAIRS + ((25, 26), (27, 28))

# Rows of the public J_regressor_h36m (17 x 6890) as the evaluation code of VIBE/TCMR
# reads them, so that H36M_TO_J14 yields the J14 order below.
H36M_JOINT_NAMES = (
    'pelvis', 'left_hip', 'left_knee', 'left_ankle', 'right_hip', 'right_knee',
    'right_ankle', 'spine', 'thorax', 'neck_nose', 'head_top', 'left_shoulder',
    'left_elbow', 'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist')
NUM_H36M_JOINTS = 17
H36M_TO_J14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
J14_JOINT_NAMES = (
    'right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee', 'left_ankle',
    'right_wrist', 'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow',
    'left_wrist', 'neck', 'head_top')
J14_HIP_IDS = (2, 3)  # the root for MPJPE is their midpoint
NUM_J14_JOINTS = 14


def _left_right_pairs(names):
    """Index pairs ``(i, j)`` of the joints named ``left_<x>`` / ``right_<x>``, by ``i``."""
    index = {name: i for i, name in enumerate(names)}
    return tuple((i, index['right_' + name[len('left_'):]]) for i, name in enumerate(names)
                 if name.startswith('left_'))


# Left/right pairs of the evaluation joint sets, read off their names.
H36M_FLIP_PAIRS = _left_right_pairs(H36M_JOINT_NAMES)
J14_FLIP_PAIRS = _left_right_pairs(J14_JOINT_NAMES)
