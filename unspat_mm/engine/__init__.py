from .checkpoint import (load_weights_only, register_weights_only_loader,
                         trust_checkpoints)
from .hooks import *  # noqa: F401,F403

# mmengine's loader for local files is replaced by one that keeps torch's
# weights_only=True protection (see unspat_mm/engine/checkpoint.py).
register_weights_only_loader()

__all__ = ['load_weights_only', 'trust_checkpoints', 'register_weights_only_loader']
