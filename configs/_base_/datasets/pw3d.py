# 3DPW (official download, converted by tools/dataset_converters/pw3d.py): in-the-wild
# video with SMPL fits; evaluated on J14 joints from the neutral-SMPL ground-truth mesh,
# hip-midpoint root, campose_valid frames only. See README "Data".
pw3d_train = dict(
    type='PW3DDataset', data_root='data/', data_prefix=dict(img_path='3dpw/'),
    ann_file='annotations/pw3d_train.npz',
    filter_cfg=dict(valid_only=True))  # targets with an aligned camera pose only
pw3d_test = dict(
    type='PW3DDataset', data_root='data/', data_prefix=dict(img_path='3dpw/'),
    ann_file='annotations/pw3d_test.npz', test_mode=True)
# the ground truth is the neutral SMPL mesh of 3DPW's theta/beta, whatever the model uses
pw3d_evaluator = dict(type='MeshMetric', joint_set='j14', root='hip_mid',
                      body_model=dict(type='SMPLBodyModel', model_dir='data/body_models'))
