# Human3.6M (mmhuman3d HumanData, converted by tools/dataset_converters/humandata.py):
# 3D joints (SMPL-compatible ones only), SMPL only if the file has it (MoSh). Evaluated
# on the mocap J14 joints (gt_joints14), hip-midpoint root. See README "Data".
h36m_train = dict(
    type='H36MDataset', data_root='data/', data_prefix=dict(img_path='h36m/'),
    ann_file='annotations/h36m_train.npz')
h36m_test = dict(
    type='H36MDataset', data_root='data/', data_prefix=dict(img_path='h36m/'),
    ann_file='annotations/h36m_test.npz', test_mode=True,
    # the benchmark's ground truth is the mocap skeleton: no SMPL fit may replace it
    labels=('keypoints2d', 'keypoints3d'))
h36m_evaluator = dict(type='MeshMetric', joint_set='j14', root='hip_mid')
