# The paper's schedule (§3.4): Adam, 90 epochs, mini-batch 8 on one V100.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=90, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4, weight_decay=0.0), clip_grad=None)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)]
auto_scale_lr = dict(enable=False, base_batch_size=8)
