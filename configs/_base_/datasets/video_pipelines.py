# The paper's data pipeline (§4, implementation details): ground-truth boxes, 256x256
# crops, T=16 windows; TCMR's occlusion augmentation, plus the flip, scale/rotation and
# colour jitter the 3D pose literature trains with. Every random draw comes from the
# window's results['rng'] (BaseVideoDataset), so augmentation is a function of (seed,
# epoch, index) and resumes exactly.
train_pipeline = [
    dict(type='LoadVideoFrames'),
    # left/right joints and SMPL pose swapped with the image
    dict(type='RandomVideoFlip', prob=0.5),
    # boxes are tight (the converters' convention): 1.25x padding as HybrIK, whose head
    # UNSPAT follows; SPIN's jitter (scale +-25%, rotation std 30 deg clipped at 60,
    # applied to 40% of windows), one draw per window
    dict(type='VideoBBoxCrop', input_size=(256, 256), padding=1.25, scale_factor=0.25,
         rot_factor=30., rot_prob=0.4,
         rotate_keys=('keypoints3d', 'gt_joints14', 'gt_joints17')),
    # TCMR: 1-7 occluders per clip drifting linearly over the window
    dict(type='RandomVideoOccluders', prob=0.5, num_occluders=(1, 7)),
    # SPIN's +-40% colour noise as torchvision-style brightness/contrast/saturation
    dict(type='VideoColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='PackVideoMeshInputs'),
]
test_pipeline = [
    dict(type='LoadVideoFrames'),
    dict(type='VideoBBoxCrop', input_size=(256, 256), padding=1.25),
    dict(type='PackVideoMeshInputs'),
]
