from .cpu_threads_hook import CPUThreadsHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['CPUThreadsHook', 'SafeCheckpointHook']
