# The embedded default: a CPU-sized UNSPAT trained for a few minutes on the synthetic
# occluded video benchmark (shaded bodies in procedural motion over clutter, tracker-like
# box jitter for SAM to undo, occluders for the uncertainty re-weighting). Generated once
# and cached under data/synthetic; needs neither SMPL nor any download (the tools write the
# stand-in body model, see standin_body_model_dir below; its numbers are not SMPL numbers).
# docs/synthetic_benchmark.md describes the benchmark, this recipe and its results.
#   python tools/train.py configs/unspat_synthetic.py
#   python tools/test.py configs/unspat_synthetic.py CHECKPOINT --baseline
_base_ = [
    '_base_/default_runtime.py',
    '_base_/models/unspat_tiny.py',  # defines num_frames, input_size, body_model_dir
    '_base_/schedules/cpu_minutes.py',
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=500),
                     logger=dict(interval=20))
log_processor = dict(by_epoch=False)

# Clips of T=4 frames taken 8 frames apart: a window spans 25 frames (1 s), past the
# benchmark's occlusions (4-24 frames), so the temporal attention has unoccluded frames to
# look at. The neck is built for the tiny model's 8 frames; shorter clips run unchanged.
num_frames = 4
frame_interval = 8
input_size = {{_base_.input_size}}
body_model_dir = {{_base_.body_model_dir}}
# tools/train.py and tools/test.py write the stand-in mannequin (NOT SMPL) here before
# building the model when the folder holds no body model; SMPL_NEUTRAL.npz there wins.
standin_body_model_dir = body_model_dir

# The CPU budget goes to iterations: ResNet-18 at 1/2 width (4x4x128 maps) in channels-last
# layout; two deconvolutions give 16x16 heatmaps (the paper's stride of 4) with 16 depth
# bins of 14 cm, fine enough for the body's depth. Why each setting, with the measurements:
# docs/synthetic_benchmark.md.
#
# Training aids, NOT in the paper (docs/synthetic_benchmark.md, "Training aids"); the paper
# configs leave all three off:
#   (1) an auxiliary regressor of the global orientation (training only: the IK still takes
#       the root from the keypoints), so that features trained from scratch learn the
#       body's facing early;
#   (2) the transformer sees clean features (the estimator still learns U from the
#       synthetic artifacts);
#   (3) sigma learns at a tenth of the learning rate, so that far-off keypoints do not
#       silence their own gradient by raising their sigma.
model = dict(
    channels_last=True,
    backbone=dict(stem_channels=32, base_channels=32),
    neck=dict(in_channels=128,
              corrupt_transformer_input=False),  # training aid (2)
    head=dict(deconv_channels=(32, 32), depth_bins=16,
              loss_root=dict(type='Rotation6DLoss', loss_weight=45.0)))  # training aid (1)
optim_wrapper = dict(  # training aid (3)
    paramwise_cfg=dict(custom_keys={'head.sigma_fc': dict(lr_mult=0.1)}))

synthetic = dict(type='SyntheticVideoDataset', cache_dir='data/synthetic',
                 body_model_dir=body_model_dir, num_frames=num_frames,
                 frame_interval=frame_interval)
train_pipeline = [
    dict(type='LoadVideoFrames'),
    dict(type='RandomSyntheticBackground', prob=1.0),  # scenes must not be memorised
    # no in-plane rotation: the benchmark's bodies stand upright
    dict(type='VideoBBoxCrop', input_size=input_size, bbox_key='bbox', scale_factor=0.1),
    dict(type='PackVideoMeshInputs'),
]
test_pipeline = [
    dict(type='LoadVideoFrames'),
    dict(type='VideoBBoxCrop', input_size=input_size, bbox_key='bbox'),
    dict(type='PackVideoMeshInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='DrawIdSampler', shuffle=True),
    dataset=dict(**synthetic, split='train', with_masks=True, seed=0, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**synthetic, split='val', test_mode=True, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**synthetic, split='test', test_mode=True, pipeline=test_pipeline))
# the dataset packs the ground-truth joints; the metric poses the body for the mesh (MPVPE)
val_evaluator = dict(type='MeshMetric', joint_set='j14', root='hip_mid',
                     body_model=dict(type='SMPLBodyModel', model_dir=body_model_dir))
# and how far the body's facing is off (the share of roots more than 45 degrees off)
test_evaluator = [val_evaluator, dict(type='RootOrientationMetric')]
