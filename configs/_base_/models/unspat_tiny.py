# A CPU-sized UNSPAT for tests and the embedded default: the paper's structure
# (per-frame ResNet, SAM, uncertainty, Space2Batch, 3 deconvs + IK head) with
# narrow layers, 64x64 crops and 4x4 feature maps (ResNet-18 at 1/4 width,
# stride 16), T=8.
num_frames = 8
input_size = (64, 64)
body_model_dir = 'data/body_models/standin'  # generated on first use when absent

model = dict(
    type='UNSPAT',
    data_preprocessor=dict(type='VideoDataPreprocessor'),
    backbone=dict(type='ResNet', depth=18, stem_channels=16, base_channels=16,
                  out_indices=(2, )),
    neck=dict(
        type='UNSPATNeck',
        in_channels=64,
        embed_dims=64,
        num_frames=num_frames,
        feat_size=(4, 4),
        num_layers=3,
        num_heads=8,
        ffn_ratio=2.0,
        attention='space2batch',
        use_sam=True,
        use_uncertainty=True,
        uncertainty_cfg=dict(hidden_channels=32)),
    head=dict(
        type='IKMeshHead',
        in_channels=64,
        body_model=dict(type='SMPLBodyModel', model_dir=body_model_dir,
                        standin_if_missing=True),
        deconv_channels=(32, 32, 32),
        depth_bins=16,
        fc_channels=(),
        dropout=0.0),
)
