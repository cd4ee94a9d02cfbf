# Runtime shared by every unspat-mm config.
default_scope = 'unspat_mm'
custom_imports = dict(imports=['unspat_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# Checkpoints that load with torch's weights_only=True, and exact resumption of
# every random stream (see unspat_mm/engine/hooks/safe_checkpoint_hook.py). On the CPU,
# the model's threads leave the data workers their cores (cpu_threads_hook.py).
custom_hooks = [dict(type='SafeCheckpointHook'), dict(type='CPUThreadsHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/*.py switch to gloo when there is no CUDA
)
randomness = dict(seed=0)

# A plain visualizer: mmpose's PoseLocalVisualizer needs torchvision. No fixed
# name: each runner then gets its own instance (named after its experiment), and
# several runs in one process (tests, notebooks) each log into their own work_dir.
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
