"""How far the predicted body's facing is off: the geodesic error of SMPL's root rotation."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from scipy.spatial.transform import Rotation

from unspat_mm.registry import METRICS


@METRICS.register_module()
class RootOrientationMetric(BaseMetric):
    """Angle (degrees) between the predicted and the ground-truth global orientation.

    The global orientation is joint 0 of SMPL's theta; both must be in the same frame (the
    datasets' theta is in camera axes, as the head's output). Frames without SMPL ground
    truth (``smpl_valid`` 0) or marked invalid are skipped. Each data sample carries
    ``pred_theta`` (72,) and ``theta`` (72,) axis-angle in radians, optionally
    ``smpl_valid``, ``valid`` and ``occluded`` (bool).

    Returns ``root_err_median`` and ``root_err_mean`` (degrees) and ``root_err_over_45``
    (percent of frames off by more than ``threshold`` degrees); with ``occluded`` flags,
    also the medians and shares over the clear and the occluded frames
    (``..._clear``, ``..._occluded``).

    Args:
        threshold (float): the angle, degrees, whose exceedance is counted.
            Defaults to 45.0.
        collect_device (str): see mmengine's ``BaseMetric``. Defaults to ``'cpu'``.
        prefix (str, optional): see mmengine's ``BaseMetric``. Defaults to None.
    """
    default_prefix: Optional[str] = ''

    def __init__(self, threshold: float = 45., collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.threshold = float(threshold)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if not bool(_numpy(sample.get('valid', True))) or not bool(
                    _numpy(sample.get('smpl_valid', 1.))):
                continue
            pred = Rotation.from_rotvec(_numpy(sample['pred_theta'])[:3])
            gt = Rotation.from_rotvec(_numpy(sample['theta'])[:3])
            occluded = sample.get('occluded')
            self.results.append(dict(
                error=float(np.degrees((pred.inv() * gt).magnitude())),
                occluded=None if occluded is None else bool(occluded)))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if not results:
            raise ValueError('RootOrientationMetric: no frame has SMPL ground truth.')
        errors = np.array([r['error'] for r in results])
        out = self._summary(errors, '')
        if all(r['occluded'] is not None for r in results):
            occluded = np.array([r['occluded'] for r in results])
            for name, mask in (('_clear', ~occluded), ('_occluded', occluded)):
                if mask.any():
                    out.update(self._summary(errors[mask], name, with_mean=False))
        return out

    def _summary(self, errors: np.ndarray, suffix: str, with_mean: bool = True) -> dict:
        out = {f'root_err_median{suffix}': float(np.median(errors)),
               f'root_err_over_{self.threshold:g}{suffix}':
               float(100. * (errors > self.threshold).mean())}
        if with_mean:
            out[f'root_err_mean{suffix}'] = float(errors.mean())
        return out


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)
