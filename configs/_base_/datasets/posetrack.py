# PoseTrack (mmhuman3d HumanData, converted by tools/dataset_converters/humandata.py):
# 2D joint tracks only. See README "Data".
posetrack_train = dict(
    type='PoseTrackDataset', data_root='data/', data_prefix=dict(img_path='posetrack/'),
    ann_file='annotations/posetrack_train.npz')
