import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from unspat_mm.evaluation import RootOrientationMetric


def _sample(angle_deg, occluded, axis=(0., 1., 0.), smpl_valid=1.):
    gt = Rotation.from_euler('x', 180, degrees=True)  # upright in camera axes
    turn = Rotation.from_rotvec(np.radians(angle_deg) * np.asarray(axis))
    theta, pred = np.zeros(72), np.zeros(72)
    theta[:3], pred[:3] = gt.as_rotvec(), (gt * turn).as_rotvec()
    return dict(pred_theta=torch.tensor(pred), theta=torch.tensor(theta),
                smpl_valid=torch.tensor(smpl_valid), occluded=occluded, valid=True)


def test_errors_shares_and_the_clear_occluded_split():
    angles = [5., 10., 50., 90., 20., 170.]
    occluded = [False, False, False, True, True, True]
    metric = RootOrientationMetric()
    metric.process({}, [_sample(a, o) for a, o in zip(angles, occluded)])
    metric.process({}, [_sample(30., False, smpl_valid=0.)])  # no SMPL: skipped
    out = metric.compute_metrics(metric.results)
    assert out['root_err_median'] == pytest.approx(np.median(angles), abs=1e-9)
    assert out['root_err_mean'] == pytest.approx(np.mean(angles), abs=1e-9)
    assert out['root_err_over_45'] == pytest.approx(50.)
    assert out['root_err_median_clear'] == pytest.approx(10., abs=1e-9)
    assert out['root_err_over_45_occluded'] == pytest.approx(200. / 3)


def test_a_turn_about_any_axis_counts_by_its_angle():
    metric = RootOrientationMetric(threshold=30.)
    metric.process({}, [_sample(40., None, axis=(0.6, 0., 0.8))])
    out = metric.compute_metrics(metric.results)
    assert out == {'root_err_median': pytest.approx(40.), 'root_err_mean': pytest.approx(40.),
                   'root_err_over_30': 100.}
    with pytest.raises(ValueError, match='no frame has SMPL ground truth'):
        RootOrientationMetric().compute_metrics([])
