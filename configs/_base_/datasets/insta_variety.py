# InstaVariety (mmhuman3d's vibe_insta_variety.npz, converted by
# tools/dataset_converters/humandata.py): 2D pseudo-ground-truth joints only. See README
# "Data".
insta_variety_train = dict(
    type='InstaVarietyDataset', data_root='data/', data_prefix=dict(img_path='insta_variety/'),
    ann_file='annotations/insta_variety_train.npz')
