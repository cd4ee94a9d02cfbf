# The embedded default with training made independent of how a batch is split
# across processes, to check a distributed setup: with the same global batch,
#   tools/dist_train.sh configs/debug/unspat_synthetic_dist_check.py 2
#   python tools/train.py configs/debug/unspat_synthetic_dist_check.py  (batch x 2)
# see the same samples, log the same losses and end with the same weights
# (tests/test_tools/test_dist_train.py). Not for accuracy: it switches off what
# makes a sample's gradient depend on the rest of its process's batch, or on a
# process's random stream.
_base_ = ['../unspat_synthetic.py']

test_pipeline = {{_base_.test_pipeline}}
train_dataloader = dict(
    sampler=dict(shuffle=False),
    dataset=dict(with_masks=False, pipeline=test_pipeline))  # no augmentation
model = dict(
    # batch statistics -> per-sample statistics
    backbone=dict(norm_cfg=dict(type='GN', num_groups=4)),
    head=dict(norm_cfg=dict(type='GN', num_groups=4), dropout=0.0),
    # no dropout; no synthetic artifacts (they copy features from the other clips
    # of the process's batch)
    neck=dict(drop_rate=0.0, uncertainty_cfg=dict(artifact_ratio=0.0)),
)
# SGD, not Adam: Adam divides each gradient element by its own magnitude, so an
# element whose gradient is float rounding noise takes a full learning-rate step
# whose sign depends on the summation order; two correct runs then differ by ~lr
# in a few weights after one step. SGD shows a real mismatch and nothing else.
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=3e-3, momentum=0.9))
