"""Distributed settings that also work without CUDA."""
import torch
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> Config:
    """Use the gloo backend when CUDA is absent (NCCL needs GPUs), so that
    ``tools/dist_train.sh CONFIG 2`` also runs on a CPU machine."""
    if not torch.cuda.is_available():
        dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'
    return cfg
