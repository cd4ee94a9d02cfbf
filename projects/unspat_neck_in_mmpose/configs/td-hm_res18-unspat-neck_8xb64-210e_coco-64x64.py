# UNSPAT's neck between a per-frame ResNet-18 and mmpose's HeatmapHead, in
# mmpose's own top-down COCO config. See ../README.md.
#
# The base is the config shipped inside the mmpose wheel (mmpose/.mim/configs),
# found without importing mmpose. (mmengine's 'mmpose::' prefix needs
# pkg_resources, which recent setuptools no longer ships.)
_base_ = [
    __import__('os.path').path.join(
        __import__('importlib.util').util.find_spec('mmpose').submodule_search_locations[0],
        '.mim', 'configs', 'body_2d_keypoint', 'topdown_heatmap', 'coco',
        'td-hm_res50_8xb64-210e_coco-256x192.py')
]
# unspat_mm's registries are children of mmpose's, so every mmpose name of the
# base resolves under scope 'unspat_mm' once its module is imported (a child
# registry does not import its parent's modules: hence mmpose.engine.hooks for
# the base's PoseVisualizationHook). Why not stay in scope 'mmpose': there the
# runner's log processor and visualizer are looked up in registries that first
# import mmpose.visualization, which needs torchvision.
custom_imports = dict(imports=['unspat_mm', 'mmpose.engine.hooks'], allow_failed_imports=False)
default_scope = 'unspat_mm'

# Clip length T. The estimator sees N = B * T images per batch; the neck reads
# every num_frames consecutive images as one clip (middle frame T // 2) and
# returns one encoded map per image. With T > 1 the dataloader must deliver
# consecutive frames of one person in order (no shuffling across clips, no
# per-frame random augmentation); T = 1 works on any image dataset.
num_frames = 1
input_size = (64, 64)  # (w, h), small to stay cheap; 256x192 -> feat_size (8, 6)
feat_size = (input_size[1] // 32, input_size[0] // 32)  # (h, w) after ResNet's stride 32
codec = dict(type='MSRAHeatmap', input_size=input_size, heatmap_size=(16, 16), sigma=1)

model = dict(
    backbone=dict(depth=18, init_cfg=None),  # 512 channels, like the paper's ResNet-34
    neck=dict(
        type='unspat_mm.UNSPATNeck',
        in_channels=512,
        num_frames=num_frames,
        feat_size=feat_size,
        attention='space2batch',
        use_sam=True,
        # The estimator's BCE loss is returned by the neck, and a plain
        # TopdownPoseEstimator has no way to collect neck losses.
        use_uncertainty=False),
    head=dict(in_channels=512, decoder=codec),
    test_cfg=dict(flip_test=False))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

# PoseLocalVisualizer needs torchvision; a plain mmengine visualizer suffices
# for training and logging.
visualizer = dict(
    _delete_=True, type='Visualizer', vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
