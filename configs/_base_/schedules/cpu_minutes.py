# A few CPU minutes: iteration-based, Adam, cosine decay. 1400 iterations of the embedded
# default take 7-9 minutes on a 2-core machine (0.30-0.38 s/iteration seen; at 0.38, 1500
# iterations made the whole job 10 min 8 s).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1400, val_interval=10**9)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=3e-3, fused=True),  # one kernel for all tensors: 3x faster
    clip_grad=dict(max_norm=5.0),
    # The Laplacian NLL (eq. 7) lets a keypoint that is still far off raise its sigma,
    # which shrinks its own gradient (~1/error): learned at the full rate, sigma slows the
    # hard keypoints (hands, feet) most. A 10x slower sigma keeps them learning.
    paramwise_cfg=dict(custom_keys={'head.sigma_fc': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, T_max=1400, eta_min=1e-5)]
