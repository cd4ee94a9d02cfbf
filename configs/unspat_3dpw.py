# UNSPAT on 3DPW, the paper's Table 1 protocol: ResNet-34 on 256x256 crops, T=16, Adam,
# 90 epochs, batch 8 (§4), trained on the TCMR mixture of 3D (3DPW, Human3.6M,
# MPI-INF-3DHP) and 2D (PennAction, PoseTrack, InstaVariety) video datasets; validated
# and tested on the 3DPW test set. Data: README "Data" (convert once, then)
#   python tools/train.py configs/unspat_3dpw.py
#   python tools/test.py configs/test/3dpw.py CHECKPOINT   (also test/h36m.py, test/mpi_inf_3dhp.py)
_base_ = [
    '_base_/default_runtime.py',
    '_base_/models/unspat_r34.py',  # defines num_frames, input_size, body_model_dir
    '_base_/schedules/adam_90e.py',
    '_base_/datasets/video_pipelines.py',  # train_pipeline, test_pipeline
    '_base_/datasets/pw3d.py',
    '_base_/datasets/h36m.py',
    '_base_/datasets/mpi_inf_3dhp.py',
    '_base_/datasets/pennaction.py',
    '_base_/datasets/posetrack.py',
    '_base_/datasets/insta_variety.py',
]

# Table 1 compares methods "that utilize image features extracted from a pre-trained
# network without fine-tuning the feature extractor" (§4), and §3.4 initialises the
# backbone and the regressor from HybrIK's ResNet-34. Convert HybrIK's checkpoint once:
#   python tools/model_converters/hybrik_to_unspat.py HYBRIK.pth \
#       data/pretrained/hybrik_res34_unspat.pth
# (a missing file stops training at start-up with that command). Backbone and head are
# loaded from it, the neck (not in HybrIK) starts fresh; the backbone is frozen: no
# gradients, batch norm in eval mode, weights and statistics never change. Frozen, it
# computes the same maps every epoch: configs/unspat_3dpw_features.py trains from them
# cached once (docs/cached_features.md).
hybrik_checkpoint = 'data/pretrained/hybrik_res34_unspat.pth'
model = dict(freeze_backbone=True,
             init_cfg=dict(type='Pretrained', checkpoint=hybrik_checkpoint))

# The mixture as TCMR trains it (DATA_2D_RATIO = 0.6: 60% of every batch from the 2D
# sets, 40% from the 3D sets, each group a ConcatDataset, i.e. in proportion to its
# members' sizes). The paper gives no ratios and says it follows TCMR. An epoch is TCMR's
# 500 iterations (NUM_ITERS_PER_EPOCH) at the paper's batch of 8: the paper does not say
# what its "90 epochs" count, and a pass over every window of the six sets (millions,
# InstaVariety alone) would make 90 epochs months on one V100.
batch_size = 8
windows_per_epoch = 500 * batch_size
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DrawIdSampler', shuffle=True),
    dataset=dict(
        type='MixedVideoDataset',
        ratios=[0.4, 0.6],
        length=windows_per_epoch,
        datasets=[
            dict(type='MixedVideoDataset',  # ratios=None: in proportion to size
                 datasets=[dict(**d, num_frames=_base_.num_frames,
                                pipeline=_base_.train_pipeline)
                           for d in (_base_.pw3d_train, _base_.h36m_train,
                                     _base_.mpi_inf_3dhp_train)]),
            dict(type='MixedVideoDataset',
                 datasets=[dict(**d, num_frames=_base_.num_frames,
                                pipeline=_base_.train_pipeline)
                           for d in (_base_.pennaction_train, _base_.posetrack_train,
                                     _base_.insta_variety_train)]),
        ]))
# every frame of the 3DPW test set as the middle of a window (stride 1)
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_base_.pw3d_test, num_frames=_base_.num_frames,
                 pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
val_evaluator = _base_.pw3d_evaluator
test_evaluator = val_evaluator
