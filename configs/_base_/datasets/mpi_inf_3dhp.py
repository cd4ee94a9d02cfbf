# MPI-INF-3DHP (mmhuman3d HumanData, converted by tools/dataset_converters/humandata.py):
# 3D joints, no SMPL. Its test set is evaluated on 17 joints in Human3.6M order
# (gt_joints17) with the pelvis as root, valid frames only. See README "Data".
mpi_inf_3dhp_train = dict(
    type='MPIINF3DHPDataset', data_root='data/', data_prefix=dict(img_path='mpi_inf_3dhp/'),
    ann_file='annotations/mpi_inf_3dhp_train.npz')
mpi_inf_3dhp_test = dict(
    type='MPIINF3DHPDataset', data_root='data/', data_prefix=dict(img_path='mpi_inf_3dhp/'),
    ann_file='annotations/mpi_inf_3dhp_test.npz', test_mode=True,
    # the benchmark's ground truth is the 17-joint skeleton: no SMPL fit may replace it
    labels=('keypoints2d', 'keypoints3d'))
mpi_inf_3dhp_evaluator = dict(type='MeshMetric', joint_set='h36m17', root='pelvis')
