"""Distributed settings that also work without CUDA."""
import datetime

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> Config:
    """Make ``tools/dist_train.sh CONFIG N`` work on a machine without CUDA.

    Without CUDA the backend becomes gloo (NCCL needs GPUs), and for the ``pytorch``
    launcher (torchrun) the process group is created here, because mmengine's own
    initialisation calls ``torch.cuda.set_device`` first; mmengine's Runner then finds
    it initialised and uses it. The model wrapper gets ``device_ids=None`` (DDP of a
    CPU module). With CUDA nothing changes.
    """
    if torch.cuda.is_available():
        return cfg
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return cfg
    # mmengine's default wrapper pins the module to GPU LOCAL_RANK; CPU modules take none
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                   broadcast_buffers=False)
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    if torch_dist.is_initialized():
        return cfg
    if launcher != 'pytorch':
        raise RuntimeError(
            f"launcher={launcher!r} without CUDA: mmengine's {launcher} initialisation "
            'needs a GPU. On CPU machines start the processes with torchrun, i.e. '
            'tools/dist_train.sh / tools/dist_test.sh (launcher "pytorch").')
    kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
    if 'timeout' in kwargs:  # seconds in configs, as mmengine accepts them
        kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
    torch_dist.init_process_group(backend=dist_cfg['backend'], **kwargs)
    return cfg


def teardown_distributed() -> None:
    """Wait for every process, then destroy the process group. A gloo group still alive
    when the interpreter exits can abort it ("terminate called without an active
    exception"), failing a run that trained correctly."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
