# Penn Action (mmhuman3d HumanData, converted by tools/dataset_converters/humandata.py):
# 2D joints only. See README "Data".
pennaction_train = dict(
    type='PennActionDataset', data_root='data/', data_prefix=dict(img_path='pennaction/'),
    ann_file='annotations/pennaction_train.npz')
