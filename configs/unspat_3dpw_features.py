# UNSPAT, the paper's Table 1 protocol (configs/unspat_3dpw.py) trained from cached
# backbone features: the frozen HybrIK ResNet-34 runs once over every frame, and the neck
# and head train from its 8x8x512 maps (the model has no backbone). Same data mixture,
# schedule and evaluation. See docs/cached_features.md:
#   python tools/extract_features.py configs/unspat_3dpw.py data/pretrained/hybrik_res34_unspat.pth
#   python tools/train.py configs/unspat_3dpw_features.py
#   python tools/test.py configs/unspat_3dpw_features.py CHECKPOINT   (3DPW test features)
# No image augmentation here: the frames were cropped and seen once, as the test pipeline
# crops them (TCMR and MPS-Net, which the paper follows, extract once without occlusion).
# The neck's synthetic feature artifacts, which train the uncertainty estimator, remain.
_base_ = ['./unspat_3dpw.py']

# the store of the backbone in hybrik_checkpoint (its weights' fingerprint names the folder)
feature_cfg = dict(root='data/features', checkpoint=_base_.hybrik_checkpoint)
feature_pipeline = [dict(type='LoadVideoFeatures'), dict(type='PackVideoMeshInputs')]

# backbone=None: inputs are (T, 512, 8, 8) maps; head (and the unused backbone keys) of
# the HybrIK file still initialise the model through init_cfg
model = dict(backbone=None, data_preprocessor=dict(features=True))

train_dataloader = dict(
    num_workers=4,
    dataset=dict(datasets=[
        dict(type='MixedVideoDataset',
             datasets=[dict(**d, num_frames=_base_.num_frames, pipeline=feature_pipeline,
                            feature_cfg=feature_cfg)
                       for d in (_base_.pw3d_train, _base_.h36m_train,
                                 _base_.mpi_inf_3dhp_train)]),
        dict(type='MixedVideoDataset',
             datasets=[dict(**d, num_frames=_base_.num_frames, pipeline=feature_pipeline,
                            feature_cfg=feature_cfg)
                       for d in (_base_.pennaction_train, _base_.posetrack_train,
                                 _base_.insta_variety_train)]),
    ]))
val_dataloader = dict(num_workers=2,
                      dataset=dict(pipeline=feature_pipeline, feature_cfg=feature_cfg))
test_dataloader = val_dataloader
