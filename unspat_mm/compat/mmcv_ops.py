"""Pure-torch stand-ins for ``mmcv.ops`` when only ``mmcv-lite`` is installed.

``import mmpose.models`` and ``import mmdet.models`` import ``mmcv.ops`` at module
level (for deformable attention, NMS, ...), and ``mmcv.ops`` needs the compiled
extension ``mmcv._ext`` that ``mmcv-lite`` does not ship. UNSPAT itself needs none
of those ops. When (and only when) ``mmcv._ext`` is missing, this module serves
``mmcv.ops`` and every ``mmcv.ops.<name>`` submodule from a stand-in that

* implements the few ops a CPU user can meet on our paths (``nms``,
  ``batched_nms`` for mmdet's box post-processing, ``point_sample``) in pure torch;
* answers every other name with a placeholder that raises a clear error naming
  the compiled mmcv the moment it is called or instantiated, so that importing
  mmpose/mmdet works but nothing silently runs without its real op.

With a full mmcv installed nothing is replaced.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import torch
import torch.nn.functional as F

HAS_COMPILED_MMCV = importlib.util.find_spec('mmcv') is not None and \
    importlib.util.find_spec('mmcv._ext') is not None

_MISSING_OP_MESSAGE = (
    'mmcv.ops.{name} needs the compiled mmcv ("mmcv-full"), but only mmcv-lite is '
    'installed, for which unspat-mm provides pure-torch stand-ins of {provided} only. '
    'Install the full build matching your torch/CUDA, e.g. `pip install -U openmim && '
    'mim install "mmcv==2.1.0"`, then uninstall mmcv-lite.')


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        offset: int = 0, score_threshold: float = 0.0, max_num: int = -1):
    """Greedy non-maximum suppression with mmcv's signature and outputs.

    Args:
        boxes (Tensor): (N, 4) boxes as (x1, y1, x2, y2) in pixels.
        scores (Tensor): (N,) box scores.
        iou_threshold (float): boxes overlapping a kept box by more are removed.
        offset (int): 0 or 1 (mmcv's legacy "+1" box width convention).
            Defaults to 0.
        score_threshold (float): boxes scoring this or less are dropped first.
            Defaults to 0.0.
        max_num (int): keep at most this many boxes, all when <= 0. Defaults to -1.

    Returns:
        tuple: (K, 5) kept boxes with their score as last column, sorted by
        descending score, and the (K,) indices of the kept boxes in ``boxes``.
    """
    boxes_t = torch.as_tensor(boxes, dtype=torch.float32)
    scores_t = torch.as_tensor(scores, dtype=torch.float32)
    valid = torch.nonzero(scores_t > score_threshold).flatten()
    order = valid[scores_t[valid].argsort(descending=True)]
    x1, y1, x2, y2 = boxes_t.unbind(-1)
    areas = (x2 - x1 + offset).clamp(min=0) * (y2 - y1 + offset).clamp(min=0)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        if 0 < max_num <= len(keep):
            break
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) +
             offset).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) +
             offset).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        order = rest[iou <= iou_threshold]
    inds = torch.tensor(keep, dtype=torch.long, device=boxes_t.device)
    dets = torch.cat([boxes_t[inds], scores_t[inds, None]], dim=1)
    if isinstance(boxes, torch.Tensor):
        return dets.to(boxes.dtype), inds
    return dets.numpy(), inds.numpy()


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                nms_cfg: dict, class_agnostic: bool = False):
    """Per-class NMS with mmcv's signature (boxes of different ``idxs`` never
    suppress each other). Returns ``(dets (K, 5), keep (K,))``."""
    if nms_cfg is None:
        order = scores.argsort(descending=True)
        return torch.cat([boxes[order], scores[order, None]], -1), order
    cfg = dict(nms_cfg)
    class_agnostic = cfg.pop('class_agnostic', class_agnostic)
    cfg.pop('type', None)
    split_thr = cfg.pop('split_thr', None)  # only a memory optimisation in mmcv
    del split_thr
    max_num = cfg.pop('max_num', -1)
    iou_threshold = cfg.pop('iou_threshold', cfg.pop('iou_thr', 0.5))
    if boxes.numel() == 0:
        return boxes.new_zeros((0, 5)), idxs.new_zeros((0,), dtype=torch.long)
    if class_agnostic:
        shifted = boxes
    else:
        # Move each class to its own region so that classes cannot overlap.
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        shifted = boxes + offsets[:, None]
    _, keep = nms(shifted, scores, iou_threshold, **cfg)
    if max_num > 0:
        keep = keep[:max_num]
    return torch.cat([boxes[keep], scores[keep, None]], -1), keep


def point_sample(input: torch.Tensor, points: torch.Tensor,
                 align_corners: bool = False, **kwargs) -> torch.Tensor:
    """Bilinear sampling at normalised [0, 1] points (mmcv's ``point_sample``).

    Args:
        input (Tensor): (N, C, H, W) feature map.
        points (Tensor): (N, P, 2) or (N, Hp, Wp, 2) points, (x, y) in [0, 1].
        align_corners (bool): as in ``F.grid_sample``. Defaults to False.
        **kwargs (dict): further ``F.grid_sample`` arguments.

    Returns:
        Tensor: (N, C, P) or (N, C, Hp, Wp) sampled features.
    """
    squeeze = points.dim() == 3
    grid = points.unsqueeze(2) if squeeze else points
    out = F.grid_sample(input, 2.0 * grid - 1.0, align_corners=align_corners, **kwargs)
    return out.squeeze(3) if squeeze else out


_PROVIDED = {'nms': nms, 'batched_nms': batched_nms, 'point_sample': point_sample}


def _placeholder(name: str):
    message = _MISSING_OP_MESSAGE.format(name=name, provided=', '.join(sorted(_PROVIDED)))

    def _refuse(*args, **kwargs):
        raise ImportError(message)

    # A class, so that code which subclasses an op at import time still imports.
    return type(name, (torch.nn.Module, ), {
        '__init__': _refuse, '__new__': lambda cls, *a, **k: _refuse(),
        '__doc__': f'Unavailable without compiled mmcv: {message}',
        '__module__': 'mmcv.ops'})


class _StandInOpsModule(types.ModuleType):
    """``mmcv.ops`` (or one of its submodules) served without the compiled extension."""

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        value = _PROVIDED.get(name) or _placeholder(name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value):
        # `import mmcv.ops.nms` binds the submodule on its parent; as in real
        # mmcv, the name must stay the function.
        if name in _PROVIDED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


class _StandInOpsFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'mmcv.ops' or fullname.startswith('mmcv.ops.'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInOpsModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        module.__unspat_standin__ = True


def install_mmcv_ops_standin() -> bool:
    """Serve ``mmcv.ops`` from the stand-in if the compiled mmcv is missing.

    Idempotent. Returns True when the stand-in is (now) active.
    """
    if HAS_COMPILED_MMCV:
        return False
    if not any(isinstance(f, _StandInOpsFinder) for f in sys.meta_path):
        broken = sys.modules.get('mmcv.ops')
        if broken is not None and not getattr(broken, '__unspat_standin__', False):
            del sys.modules['mmcv.ops']
        sys.meta_path.insert(0, _StandInOpsFinder())
    return True
