import numpy as np
import pytest
from mmpose.evaluation.functional import keypoint_mpjpe
from scipy.spatial.transform import Rotation

from unspat_mm.evaluation.functional import (accel_error, accel_keep_mask, mpjpe, mpvpe, pa_mpjpe,
                                             procrustes_align)
from unspat_mm.structures.skeleton import J14_HIP_IDS


def _joints(rng, n, k=14):
    return rng.normal(scale=0.3, size=(n, k, 3))


def _similarity(rng, pts):
    """Random rotation, scale in [0.5, 2] and translation applied to each frame."""
    rot = Rotation.random(len(pts), random_state=rng.integers(1 << 30)).as_matrix()
    scale = rng.uniform(0.5, 2.0, size=(len(pts), 1, 1))
    trans = rng.normal(size=(len(pts), 1, 3))
    return scale * np.einsum('nij,nkj->nki', rot, pts) + trans


def test_pa_mpjpe_matches_mmpose_procrustes():
    rng = np.random.default_rng(0)
    pred, gt = _joints(rng, 50), _joints(rng, 50)
    per_frame = pa_mpjpe(pred, gt)
    mask = np.ones(pred.shape[:2], bool)
    ref_mean = keypoint_mpjpe(pred, gt, mask, alignment='procrustes') * 1000
    assert per_frame.shape == (50, )
    assert abs(per_frame.mean() - ref_mean) < 1e-6
    for i in (0, 17, 49):
        ref_i = keypoint_mpjpe(pred[i:i + 1], gt[i:i + 1], mask[i:i + 1], 'procrustes') * 1000
        assert abs(per_frame[i] - ref_i) < 1e-6
    # alignment can only lower the error
    assert (per_frame < mpjpe(pred, gt)).all()


def test_pa_mpjpe_invariant_to_similarity_transforms():
    rng = np.random.default_rng(1)
    gt = _joints(rng, 20)
    assert np.abs(pa_mpjpe(_similarity(rng, gt), gt)).max() < 1e-9
    pred = gt + rng.normal(scale=0.02, size=gt.shape)
    np.testing.assert_allclose(pa_mpjpe(_similarity(rng, pred), gt), pa_mpjpe(pred, gt),
                               atol=1e-9)
    np.testing.assert_allclose(procrustes_align(_similarity(rng, gt), gt), gt, atol=1e-12)


def test_pa_mpjpe_does_not_align_reflections():
    rng = np.random.default_rng(2)
    gt = _joints(rng, 10)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    # a reflection is not a similarity transform; without the SVD sign fix it would be ~0
    assert (pa_mpjpe(mirrored, gt) > 10.0).all()


def test_mpjpe_hip_root_matches_loop_and_ignores_translation():
    rng = np.random.default_rng(3)
    pred, gt = _joints(rng, 8), _joints(rng, 8)
    out = mpjpe(pred, gt, root=J14_HIP_IDS)
    for n in range(8):
        p_root = (pred[n, 2] + pred[n, 3]) / 2
        g_root = (gt[n, 2] + gt[n, 3]) / 2
        ref = np.mean([np.linalg.norm((pred[n, k] - p_root) - (gt[n, k] - g_root))
                       for k in range(14)]) * 1000
        assert abs(out[n] - ref) < 1e-9
    shifted = pred + rng.normal(size=(8, 1, 3))
    np.testing.assert_allclose(mpjpe(shifted, gt, root=J14_HIP_IDS), out, atol=1e-9)
    # without a root the shift does matter, and the pelvis-style single index works too
    assert not np.allclose(mpjpe(shifted, gt), mpjpe(pred, gt))
    np.testing.assert_allclose(mpjpe(shifted, gt, root=0), mpjpe(pred, gt, root=0), atol=1e-9)


def test_mpvpe_matches_loop():
    rng = np.random.default_rng(4)
    pred, gt = _joints(rng, 3, 6890), _joints(rng, 3, 6890)
    out = mpvpe(pred, gt)
    ref = [np.mean([np.linalg.norm(pred[n, v] - gt[n, v]) for v in range(6890)]) * 1000
           for n in range(3)]
    np.testing.assert_allclose(out, ref, atol=1e-6)


def _accel_loop(pred, gt):
    out = []
    for t in range(1, len(pred) - 1):
        errs = []
        for k in range(pred.shape[1]):
            a_p = pred[t - 1, k] - 2 * pred[t, k] + pred[t + 1, k]
            a_g = gt[t - 1, k] - 2 * gt[t, k] + gt[t + 1, k]
            errs.append(np.linalg.norm(a_p - a_g))
        out.append(np.mean(errs) * 1000)
    return np.array(out)


def test_accel_error_matches_second_difference_loop():
    rng = np.random.default_rng(5)
    pred, gt = _joints(rng, 12), _joints(rng, 12)
    np.testing.assert_allclose(accel_error(pred, gt), _accel_loop(pred, gt), atol=1e-6)
    # root alignment happens before differencing
    hip = lambda x: x - x[:, [2, 3]].mean(axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(
        accel_error(pred, gt, root=J14_HIP_IDS), _accel_loop(hip(pred), hip(gt)), atol=1e-6)
    # constant-velocity motion added to the prediction has no acceleration
    drift = np.arange(12)[:, None, None] * rng.normal(size=(1, 14, 3))
    np.testing.assert_allclose(accel_error(pred + drift, gt), accel_error(pred, gt), atol=1e-6)


def test_accel_error_drops_invalid_triplets_and_gaps():
    rng = np.random.default_rng(6)
    pred, gt = _joints(rng, 10), _joints(rng, 10)
    full = _accel_loop(pred, gt)  # entry i is frame i + 1
    valid = np.ones(10, bool)
    valid[4] = False  # kills the triplets centred at 3, 4 and 5
    np.testing.assert_allclose(
        accel_error(pred, gt, valid=valid), full[[0, 1, 5, 6, 7]], atol=1e-6)
    index = np.array([0, 1, 2, 3, 4, 10, 11, 12, 13, 14])  # a gap between 4 and 10
    np.testing.assert_allclose(
        accel_error(pred, gt, frame_index=index), full[[0, 1, 2, 5, 6, 7]], atol=1e-6)
    assert accel_keep_mask(2).shape == (0, )
    assert accel_error(pred[:2], gt[:2]).shape == (0, )


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(7)
    pred = _joints(rng, 4)
    with pytest.raises(ValueError, match=r'\(N, K, 3\)'):
        mpjpe(pred, pred[:, :13])
    with pytest.raises(ValueError, match='out of range'):
        mpjpe(pred, pred, root=14)
    with pytest.raises(ValueError, match='valid has 3 entries for 4 frames'):
        accel_error(pred, pred, valid=np.ones(3, bool))
    with pytest.raises(ValueError, match='strictly increasing'):
        accel_error(pred, pred, frame_index=np.array([0, 2, 1, 3]))
