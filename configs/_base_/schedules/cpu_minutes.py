# A few CPU minutes: iteration-based, Adam, cosine decay (the embedded default's schedule;
# about 5-10 minutes on 2 CPU cores).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1400, val_interval=10**9)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=3e-3, fused=True),  # one kernel for all tensors
    clip_grad=dict(max_norm=5.0))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, T_max=1400, eta_min=1e-5)]
