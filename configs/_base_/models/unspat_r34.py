# UNSPAT as the paper describes it (§3, §3.4): ResNet-34 without global pooling
# on 256x256 crops -> 8x8x512 maps per frame, T=16; SAM; uncertainty estimator;
# Space2Batch transformer (3 layers, 8 heads, learnable positional embeddings);
# HybrIK-style head (3 deconvolutions, 1x1 conv, 29 keypoints, IK, SMPL).
num_frames = 16
input_size = (256, 256)
body_model_dir = 'data/body_models'  # SMPL_NEUTRAL.npz + J_regressor_h36m.npy (README)

model = dict(
    type='UNSPAT',
    data_preprocessor=dict(type='VideoDataPreprocessor'),
    backbone=dict(type='ResNet', depth=34, out_indices=(3, )),
    neck=dict(
        type='UNSPATNeck',
        in_channels=512,
        embed_dims=512,
        num_frames=num_frames,
        feat_size=(8, 8),
        num_layers=3,
        num_heads=8,
        ffn_ratio=3.0,  # not given in the paper; see README "Parameters and FLOPs"
        attention='space2batch',
        use_sam=True,
        use_uncertainty=True),
    head=dict(
        type='IKMeshHead',
        in_channels=512,
        body_model=dict(type='SMPLBodyModel', model_dir=body_model_dir),
        deconv_channels=(256, 256, 256),
        depth_bins=64,
        fc_channels=()),  # "linear layers ... after global average pooling" (§3.2)
)
