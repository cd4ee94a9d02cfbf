# A CPU-sized UNSPAT for tests and the embedded default: the paper's model
# (unspat_r34.py) with narrow layers, 64x64 crops, 4x4 feature maps (ResNet-18 at
# 1/4 width, three stages, stride 16) and T=8.
_base_ = ['./unspat_r34.py']
num_frames = 8
input_size = (64, 64)
body_model_dir = 'data/body_models/standin'  # tools/make_body_model.py writes the stand-in

model = dict(
    # three stages only: a fourth would be computed and never used
    backbone=dict(depth=18, stem_channels=16, base_channels=16, num_stages=3,
                  strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, )),
    neck=dict(in_channels=64, embed_dims=64, num_frames=num_frames, feat_size=(4, 4),
              ffn_ratio=2.0, uncertainty_cfg=dict(hidden_channels=32)),
    head=dict(in_channels=64,
              body_model=dict(model_dir=body_model_dir),
              deconv_channels=(32, 32, 32), depth_bins=16, dropout=0.0),
)
