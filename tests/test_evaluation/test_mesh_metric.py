import pickle

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import BaseDataElement, InstanceData
from mmpose.evaluation.functional import keypoint_mpjpe

from unspat_mm.evaluation import MeshMetric
from unspat_mm.registry import METRICS

NUM_VERTS = 30  # the metric does not care about SMPL's 6890; keeps the test fast


def _make_samples(seed=0, k=14, with_verts=True):
    """Three tracks (one with a frame-index gap), some frames invalid."""
    rng = np.random.default_rng(seed)
    tracks = {'courtyard_0': np.arange(9), 7: np.arange(5, 12), 'office_1':
              np.array([0, 1, 2, 3, 6, 7, 8])}
    samples = []
    for seq, frames in tracks.items():
        for f in frames:
            gt = rng.normal(scale=0.3, size=(k, 3))
            # office_1 is all valid, so only its gap (3 -> 6) can break triplets there
            valid = bool(rng.random() > 0.25) or seq == 'office_1'
            s = dict(sequence_id=seq, frame_index=int(f), valid=valid,
                     gt=gt, pred=gt + rng.normal(scale=0.05, size=(k, 3)))
            if with_verts:
                s['gt_v'] = rng.normal(size=(NUM_VERTS, 3))
                s['pred_v'] = s['gt_v'] + rng.normal(scale=0.05, size=(NUM_VERTS, 3))
            samples.append(s)
    return samples


def _to_data_sample(s, suffix='joints14'):
    out = {'sequence_id': s['sequence_id'], 'frame_index': s['frame_index'],
           'valid': s['valid'], f'pred_{suffix}': s['pred'], f'gt_{suffix}': s['gt']}
    if 'gt_v' in s:
        out.update(pred_vertices=s['pred_v'], gt_vertices=s['gt_v'])
    return out


def _run(metric, samples, batch=4):
    for i in range(0, len(samples), batch):
        metric.process({}, [_to_data_sample(s) for s in samples[i:i + batch]])
    return metric.compute_metrics(metric.results)


def _reference(samples, root=(2, 3), filter_first=False):
    """Direct computation with loops, mmpose's Procrustes for PA-MPJPE."""
    valid = [s for s in samples if s['valid']]
    pred = np.stack([s['pred'] for s in valid])
    gt = np.stack([s['gt'] for s in valid])
    errs = []
    for s in valid:
        p = s['pred'] - s['pred'][list(root)].mean(0)
        g = s['gt'] - s['gt'][list(root)].mean(0)
        errs.append(np.mean([np.linalg.norm(p[j] - g[j]) for j in range(len(p))]))
    ref = {
        'MPJPE': 1000 * np.mean(errs),
        'PA-MPJPE': 1000 * keypoint_mpjpe(pred, gt, np.ones(pred.shape[:2], bool),
                                          alignment='procrustes'),
        'MPVPE': 1000 * np.mean([np.linalg.norm(s['pred_v'] - s['gt_v'], axis=1).mean()
                                 for s in valid]),
    }
    by_frame = {(s['sequence_id'], s['frame_index']): s for s in samples}
    accels = []
    for seq in {s['sequence_id'] for s in samples}:
        frames = sorted(s['frame_index'] for s in samples if s['sequence_id'] == seq)
        if filter_first:
            frames = [f for f in frames if by_frame[(seq, f)]['valid']]
        for i in range(1, len(frames) - 1):
            trip = [by_frame[(seq, frames[j])] for j in (i - 1, i, i + 1)]
            if not filter_first and (frames[i + 1] - frames[i - 1] != 2
                                     or not all(t['valid'] for t in trip)):
                continue
            al = [(t['pred'] - t['pred'][list(root)].mean(0), t['gt'] - t['gt'][list(root)].mean(0))
                  for t in trip]
            acc_p = al[0][0] - 2 * al[1][0] + al[2][0]
            acc_g = al[0][1] - 2 * al[1][1] + al[2][1]
            accels.append(np.mean([np.linalg.norm(acc_p[j] - acc_g[j])
                                   for j in range(len(acc_p))]))
    ref['Accel'] = 1000 * np.mean(accels)
    return ref, len(accels)


@pytest.mark.parametrize('accel_mode', ['consecutive', 'filter_first'])
def test_metric_matches_reference(accel_mode):
    samples = _make_samples()
    out = _run(MeshMetric(accel_mode=accel_mode), samples)
    ref, num_accel = _reference(samples, filter_first=accel_mode == 'filter_first')
    assert num_accel >= 5
    assert set(out) == {'MPJPE', 'PA-MPJPE', 'MPVPE', 'Accel'}
    for key in ref:
        assert abs(out[key] - ref[key]) < 1e-6, key


def test_shuffled_order_gives_identical_results():
    samples = _make_samples(1)
    expected = _run(MeshMetric(), samples)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(samples))
        assert _run(MeshMetric(), [samples[i] for i in order], batch=3) == expected


def test_invalid_frames_are_excluded():
    samples = _make_samples(2)
    expected = _run(MeshMetric(), samples)
    assert not all(s['valid'] for s in samples)
    for s in samples:
        if not s['valid']:
            s['pred'] = s['pred'] + 5.0  # garbage that would dominate every metric
            s['pred_v'] = s['pred_v'] - 3.0
    assert _run(MeshMetric(), samples) == expected


def test_pelvis_root_for_h36m17_and_missing_vertices():
    samples = _make_samples(3, k=17, with_verts=False)
    metric = MeshMetric(joint_set='h36m17', root='pelvis')
    for s in samples:
        metric.process({}, [_to_data_sample(s, 'joints17')])
    out = metric.compute_metrics(metric.results)
    assert 'MPVPE' not in out  # no ground-truth meshes (MPI-INF-3DHP)
    ref, _ = _reference([dict(s, pred_v=np.zeros((1, 3)), gt_v=np.zeros((1, 3))) for s in samples],
                        root=(0, ))
    for key in ('MPJPE', 'PA-MPJPE', 'Accel'):
        assert abs(out[key] - ref[key]) < 1e-6, key


def test_evaluator_with_data_elements_and_dump(tmp_path):
    """The mmengine path: data elements, nested instances, torch tensors, pickling."""
    samples = _make_samples(4)
    dump = tmp_path / 'sub' / 'frames.npz'
    evaluator = Evaluator(METRICS.build(dict(type='MeshMetric', dump_path=str(dump))))
    for s in samples:
        pred = InstanceData(pred_joints14=torch.tensor(s['pred'][None]),
                            pred_vertices=torch.tensor(s['pred_v'][None]))
        gt = InstanceData(gt_joints14=s['gt'][None], gt_vertices=s['gt_v'][None])
        evaluator.process([BaseDataElement(
            metainfo=dict(sequence_id=s['sequence_id'], frame_index=s['frame_index'],
                          valid=s['valid']), pred_instances=pred, gt_instances=gt)])
    results = evaluator.metrics[0].results
    assert len(results) == len(samples)  # one per frame, as collect_results expects
    assert pickle.loads(pickle.dumps(results))[0].keys() == results[0].keys()
    out = evaluator.evaluate(len(samples))
    assert out == _run(MeshMetric(), samples)

    saved = np.load(dump)
    order = sorted(range(len(samples)),
                   key=lambda i: (type(samples[i]['sequence_id']).__name__,
                                  str(samples[i]['sequence_id']), samples[i]['frame_index']))
    np.testing.assert_array_equal(saved['frame_index'],
                                  [samples[i]['frame_index'] for i in order])
    np.testing.assert_allclose(saved['pred_joints'], [samples[i]['pred'] for i in order])
    v = saved['valid']
    assert abs(saved['mpjpe'][v].mean() - out['MPJPE']) < 1e-9
    assert abs(np.nanmean(saved['accel']) - out['Accel']) < 1e-9


def test_bad_configs_and_samples_raise():
    with pytest.raises(ValueError, match="use one of \\['hip_mid'\\]"):
        MeshMetric(joint_set='j14', root='pelvis')
    with pytest.raises(ValueError, match='joint_set'):
        MeshMetric(joint_set='coco')
    samples = [_to_data_sample(s) for s in _make_samples(5)[:3]]
    metric = MeshMetric()
    with pytest.raises(ValueError, match=r'pred_joints14 must be \(14, 3\)'):
        metric.process({}, [dict(samples[0], pred_joints14=np.zeros((17, 3)))])
    with pytest.raises(KeyError, match='frame_index'):
        metric.process({}, [{k: v for k, v in samples[0].items() if k != 'frame_index'}])
    metric.process({}, [samples[0], samples[1], samples[0]])
    with pytest.raises(ValueError, match='evaluated twice'):
        metric.compute_metrics(metric.results)
    metric = MeshMetric()
    metric.process({}, [dict(s, valid=False) for s in samples])
    with pytest.raises(ValueError, match='none of the 3 evaluated frames is valid'):
        metric.compute_metrics(metric.results)


@pytest.mark.parametrize('accel_mode', ['consecutive', 'filter_first'])
def test_invalid_frames_may_lack_ground_truth(accel_mode):
    """3DPW frames without a camera pose have no ground truth: dropping it from the
    invalid frames changes no metric; a valid frame without it is an error."""
    samples = _make_samples(seed=4)
    full = _run(MeshMetric(accel_mode=accel_mode), samples)
    metric = MeshMetric(accel_mode=accel_mode)
    for i in range(0, len(samples), 4):
        batch = [_to_data_sample(s) for s in samples[i:i + 4]]
        for s in batch:
            if not s['valid']:
                del s['gt_joints14'], s['gt_vertices']
        metric.process({}, batch)
    stripped = metric.compute_metrics(metric.results)
    assert stripped.keys() == full.keys()
    for name, value in full.items():
        assert stripped[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name

    bad = _to_data_sample(samples[0])
    bad.update(valid=True, gt_joints14=np.full((14, 3), np.nan))
    with pytest.raises(ValueError, match='gt_joints14 of a valid frame is not finite'):
        MeshMetric().process({}, [bad])


def _smpl_samples(body, seed=0, num=5):
    """Frames of one track with ground-truth SMPL parameters only (3DPW's case) and
    predictions: the ground-truth body's joints and mesh, shifted by 1 cm in x."""
    g = torch.Generator().manual_seed(seed)
    theta = 0.3 * torch.randn(num, 72, generator=g)
    betas = torch.randn(num, 10, generator=g)
    with torch.no_grad():
        truth = body(theta, betas)
    shift = torch.tensor([0.01, 0., 0.])
    samples = [dict(sequence_id='seq', frame_index=i, valid=True, theta=theta[i],
                    betas=betas[i], smpl_valid=torch.tensor(1.),
                    pred_joints14=truth['joints14'][i] + shift,
                    pred_vertices=truth['vertices'][i] + shift) for i in range(num)]
    return samples, truth


def test_metric_poses_the_body_model_for_smpl_ground_truth(standin_model_dir):
    from unspat_mm.models.body import SMPLBodyModel
    body = SMPLBodyModel(standin_model_dir)
    samples, truth = _smpl_samples(body)
    metric = MeshMetric(body_model=dict(type='SMPLBodyModel', model_dir=standin_model_dir),
                        dump_path=None)
    metric.process({}, samples[:3])
    metric.process({}, samples[3:])
    out = metric.compute_metrics(metric.results)
    # a rigid 1 cm shift: MPJPE 0 after root alignment, MPVPE exactly 10 mm
    assert out['MPJPE'] == pytest.approx(0., abs=1e-4)
    assert out['MPVPE'] == pytest.approx(10., abs=1e-4)
    gt = np.stack([r['gt_joints'] for r in metric.results])
    np.testing.assert_allclose(gt, truth['joints14'].numpy(), atol=1e-7)


def test_packed_ground_truth_wins_and_a_missing_body_model_is_named(standin_model_dir):
    from unspat_mm.models.body import SMPLBodyModel
    samples, truth = _smpl_samples(SMPLBodyModel(standin_model_dir), seed=1)
    packed = [dict(s, gt_joints14=s['pred_joints14']) for s in samples]  # mocap-like joints
    metric = MeshMetric(body_model=dict(type='SMPLBodyModel', model_dir=standin_model_dir))
    metric.process({}, packed)
    out = metric.compute_metrics(metric.results)
    assert out['MPJPE'] == 0.  # the packed joints, not the body model's
    assert out['MPVPE'] == pytest.approx(10., abs=1e-4)  # the mesh still from the body
    with pytest.raises(KeyError, match="body_model=dict\\(type='SMPLBodyModel'"):
        MeshMetric().process({}, samples)
    # packed joints and no body model: joints only, no MPVPE (as before)
    plain = MeshMetric()
    plain.process({}, [dict(s, gt_joints14=s['pred_joints14'], pred_vertices=None)
                       for s in samples])
    assert 'MPVPE' not in plain.compute_metrics(plain.results)


def test_tcmr_accel_conventions_of_3dpw_and_3dhp():
    """One sequence of 7 frames whose frame 3 is invalid: 3DPW's convention drops it and
    differences frames 0,1,2,4,5,6 as consecutive; 3DHP's differences all 7 frames and
    keeps the centres that are valid (1, 2, 4, 5). Written out by hand, in mm."""
    rng = np.random.default_rng(7)
    gt = rng.normal(scale=0.2, size=(7, 14, 3))
    pred = gt + rng.normal(scale=0.02, size=(7, 14, 3))
    valid = np.array([1, 1, 1, 0, 1, 1, 1], bool)
    samples = [dict(sequence_id='s', frame_index=t, valid=bool(valid[t]),
                    pred_joints14=pred[t], gt_joints14=gt[t]) for t in range(7)]

    def accel(p, g, t0, t1, t2):
        def aligned(x, t):
            return x[t] - x[t][[2, 3]].mean(0)
        second = [aligned(p, t0) - 2 * aligned(p, t1) + aligned(p, t2),
                  aligned(g, t0) - 2 * aligned(g, t1) + aligned(g, t2)]
        return 1000 * np.linalg.norm(second[0] - second[1], axis=-1).mean()

    kept = [0, 1, 2, 4, 5, 6]
    expected_3dpw = np.mean([accel(pred, gt, *kept[i:i + 3]) for i in range(4)])
    expected_3dhp = np.mean([accel(pred, gt, t - 1, t, t + 1) for t in (1, 2, 4, 5)])
    results = {}
    for mode in ('filter_first', 'valid_centre', 'consecutive'):
        metric = MeshMetric(accel_mode=mode)
        metric.process({}, [dict(s) for s in samples])
        results[mode] = metric.compute_metrics(metric.results)['Accel']
    assert results['filter_first'] == pytest.approx(expected_3dpw, rel=1e-10)
    assert results['valid_centre'] == pytest.approx(expected_3dhp, rel=1e-10)
    # the default never spans the invalid frame: centres 1 and 5 only
    assert results['consecutive'] == pytest.approx(
        np.mean([accel(pred, gt, 0, 1, 2), accel(pred, gt, 4, 5, 6)]), rel=1e-10)
    assert len(set(results.values())) == 3


def test_3dhp_accel_skips_differences_through_frames_without_ground_truth():
    rng = np.random.default_rng(8)
    gt = rng.normal(scale=0.2, size=(6, 14, 3))
    samples = [dict(sequence_id='s', frame_index=t, valid=t != 2,
                    pred_joints14=gt[t] + 0.01 * t, gt_joints14=gt[t]) for t in range(6)]
    del samples[2]['gt_joints14']  # an invalid frame may lack ground truth
    metric = MeshMetric(accel_mode='valid_centre')
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    per_frame = metric._sequence_accel(sorted(metric.results, key=lambda r: r['frame_index']))
    assert np.isnan(per_frame[[0, 1, 2, 3, 5]]).all() and np.isfinite(per_frame[4])
