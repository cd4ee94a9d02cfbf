# A CPU-sized UNSPAT for tests and the embedded default: the paper's model
# (unspat_r34.py) with narrow layers, 64x64 crops, 4x4 feature maps (ResNet-18 at
# 1/4 width, three stages, stride 16) and T=8. Trained from scratch, so it keeps
# ImageNet's RGB normalisation and the metric-cube head ('xyz': heatmaps in metres,
# single linear regressors) instead of HybrIK's conventions.
_base_ = ['./unspat_r34.py']
num_frames = 8
input_size = (64, 64)
body_model_dir = 'data/body_models/standin'  # tools/make_body_model.py writes the stand-in

model = dict(
    data_preprocessor=dict(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)),
    # three stages only: a fourth would be computed and never used
    backbone=dict(depth=18, stem_channels=16, base_channels=16, num_stages=3,
                  strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, )),
    neck=dict(in_channels=64, embed_dims=64, num_frames=num_frames, feat_size=(4, 4),
              ffn_ratio=2.0, uncertainty_cfg=dict(hidden_channels=32)),
    head=dict(in_channels=64,
              body_model=dict(model_dir=body_model_dir),
              convention='xyz', fc_channels=(),  # linear regressors on the pooled feature
              deconv_channels=(32, 32, 32), depth_bins=16, dropout=0.0),
)
