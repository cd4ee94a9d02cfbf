# UNSPAT as the paper describes it (§3, §3.4): ResNet-34 without global pooling
# on 256x256 crops -> 8x8x512 maps per frame, T=16; SAM; uncertainty estimator;
# Space2Batch transformer (3 layers, 8 heads, learnable positional embeddings);
# HybrIK's head (3 deconvolutions, 1x1 conv to 29 uvd heatmaps, fc1/fc2 MLP, shape /
# twist / camera / sigma regressors, IK, SMPL), so that "pre-trained ResNet-34 model
# [HybrIK] ... and weights to initialize the regressor" load: convert HybrIK's
# checkpoint once with tools/model_converters/hybrik_to_unspat.py (docs/hybrik_checkpoint.md).
num_frames = 16
input_size = (256, 256)
body_model_dir = 'data/body_models'  # SMPL_NEUTRAL.npz + J_regressor_h36m.npy (README)

model = dict(
    type='UNSPAT',
    # HybrIK's input normalisation: RGB crops, ImageNet statistics in BGR order
    # (unspat_mm/models/heads/hybrik_convention.py)
    data_preprocessor=dict(type='VideoDataPreprocessor',
                           mean=(103.53, 116.535, 122.4), std=(57.375, 57.12, 58.395)),
    backbone=dict(type='ResNet', depth=34, out_indices=(3, )),
    neck=dict(
        type='UNSPATNeck',
        in_channels=512,
        embed_dims=512,
        num_frames=num_frames,
        feat_size=(8, 8),
        num_layers=3,
        num_heads=8,
        attention='space2batch',
        use_sam=True,
        use_uncertainty=True),
    head=dict(
        type='IKMeshHead',
        in_channels=512,
        body_model=dict(type='SMPLBodyModel', model_dir=body_model_dir),
        convention='hybrik',  # uvd heatmaps, HybrIK's camera, init_shape / init_cam
        deconv_channels=(256, 256, 256),
        depth_bins=64,
        fc_channels=(1024, 1024),  # HybrIK's fc1 / fc2, dropout 0.5 each
        dropout=0.5,
        cube_size=2.2,  # HybrIK's depth factor (BBOX_3D_SHAPE 2200 mm)
        focal=1000. / 256.),  # HybrIK: focal length 1000 px on the 256 px crop
)
