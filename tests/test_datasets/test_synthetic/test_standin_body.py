import importlib.util
import os.path as osp
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

from unspat_mm.datasets.synthetic.standin_body import (DESIGN_JOINTS, DESIGN_LEAVES,
                                                       build_standin_arrays, make_standin_files)
from unspat_mm.structures.skeleton import (H36M_TO_J14, J14_JOINT_NAMES, LEAF_VERTEX_IDS,
                                           SMPL_JOINT_NAMES, SMPL_PARENTS)


@pytest.fixture(scope='module')
def standin():
    arrays, h36m = build_standin_arrays(seed=0)
    return arrays, h36m


def _volume(verts, faces):
    tri = verts[faces.astype(np.int64)]
    return np.einsum('ij,ij->i', tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6


def _height(verts):
    return verts[:, 1].max() - verts[:, 1].min()


def test_array_layout(standin):
    arrays, h36m = standin
    layout = dict(v_template=((6890, 3), np.float64), f=((13776, 3), np.uint32),
                  J_regressor=((24, 6890), np.float64), weights=((6890, 24), np.float64),
                  shapedirs=((6890, 3, 10), np.float64), posedirs=((6890, 3, 207), np.float64),
                  kintree_table=((2, 24), np.int64))
    assert set(arrays) == set(layout)
    for key, (shape, dtype) in layout.items():
        assert arrays[key].shape == shape and arrays[key].dtype == dtype, key
    assert h36m.shape == (17, 6890) and h36m.dtype == np.float64
    tree = arrays['kintree_table']
    assert tree[0, 0] == 2**32 - 1
    assert tree[0, 1:].tolist() == list(SMPL_PARENTS[1:])
    assert tree[1].tolist() == list(range(24))
    assert arrays['f'].max() == 6889 and len(np.unique(arrays['f'])) == 6890


def test_deterministic_and_seeded(standin):
    arrays, h36m = standin
    again, h36m_again = build_standin_arrays(seed=0)
    for key in arrays:
        assert arrays[key].tobytes() == again[key].tobytes(), key
    assert h36m.tobytes() == h36m_again.tobytes()
    other, _ = build_standin_arrays(seed=1)
    # the seed changes details only, never the anatomy
    assert np.array_equal(other['v_template'], arrays['v_template'])
    assert not np.array_equal(other['posedirs'], arrays['posedirs'])
    assert np.array_equal(other['shapedirs'][..., :2], arrays['shapedirs'][..., :2])


def test_closed_oriented_surface(standin):
    arrays, _ = standin
    faces = arrays['f'].astype(np.int64)
    edges = Counter(map(tuple, np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]],
                                               faces[:, [2, 0]]]).tolist()))
    # every directed edge once and its reverse present: closed, consistently oriented
    assert max(edges.values()) == 1
    assert all((b, a) in edges for a, b in edges)
    assert 6890 - len(edges) // 2 + 13776 == 2  # Euler characteristic of a sphere
    volume = _volume(arrays['v_template'], faces)
    assert 0.045 < volume < 0.09  # m^3, outward normals; an adult is 60-80 litres


def test_anatomy(standin):
    arrays, _ = standin
    verts = arrays['v_template']
    joints = arrays['J_regressor'] @ verts
    assert 1.55 < _height(verts) < 1.9
    assert np.linalg.norm(joints[0]) < 0.25  # pelvis near the origin, as in SMPL
    head_top, l_tip, r_tip, l_toe, r_toe = (verts[i] for i in LEAF_VERTEX_IDS)
    assert head_top[1] == verts[:, 1].max()
    assert l_tip[0] == verts[:, 0].max() > 0.75 and r_tip[0] == verts[:, 0].min() < -0.75
    np.testing.assert_allclose(verts[list(LEAF_VERTEX_IDS)], DESIGN_LEAVES)
    for toe, ankle, foot in ((l_toe, 7, 10), (r_toe, 8, 11)):
        assert toe[2] > joints[ankle, 2] + 0.15  # toes in front of the ankles (+z)
        assert abs(toe[1] - verts[:, 1].min()) < 0.03  # near the floor
        assert toe[0] * joints[foot, 0] > 0  # same side
    name = SMPL_JOINT_NAMES.index
    for left in ('left_hip', 'left_knee', 'left_ankle', 'left_shoulder', 'left_wrist'):
        right = name(left.replace('left', 'right'))
        assert joints[name(left), 0] > 0.05 and joints[right, 0] < -0.05
        np.testing.assert_allclose(joints[name(left)] * [-1, 1, 1], joints[right], atol=1e-6)
    # head above neck above spine above pelvis above knees above ankles
    assert np.all(np.diff(joints[[7, 4, 1, 0, 3, 6, 12, 15], 1]) > 0)


def test_regressors(standin):
    arrays, h36m = standin
    verts = arrays['v_template']
    for reg in (arrays['J_regressor'], h36m):
        assert reg.min() >= 0
        np.testing.assert_allclose(reg.sum(1), 1, atol=1e-12)
    joints = arrays['J_regressor'] @ verts
    assert np.abs(joints - DESIGN_JOINTS).max() < 1e-3
    # each joint is regressed from vertices around it
    for j in range(24):
        support = verts[arrays['J_regressor'][j] > 0]
        assert np.linalg.norm(support - joints[j], axis=1).max() < 0.2
    # H36M rows follow H36M_JOINT_NAMES, so J14 lands on the right anatomy
    j14 = (h36m @ verts)[list(H36M_TO_J14)]
    for i, name in enumerate(J14_JOINT_NAMES):
        if name in SMPL_JOINT_NAMES:
            assert np.linalg.norm(j14[i] - joints[SMPL_JOINT_NAMES.index(name)]) < 0.03, name
    assert j14[13, 1] > j14[12, 1] > joints[9, 1]  # head top above neck above spine3
    assert j14[13, 1] > joints[15, 1] + 0.1


def test_skinning_weights(standin):
    arrays, _ = standin
    weights, faces = arrays['weights'], arrays['f'].astype(np.int64)[:-24]  # minus bridges
    assert weights.min() >= 0
    np.testing.assert_allclose(weights.sum(1), 1, atol=1e-12)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    jump = np.abs(weights[edges[:, 0]] - weights[edges[:, 1]]).max(1)
    # blended near joints: no hard 0 -> 1 switch between neighbours
    assert jump.max() < 0.65 and jump.mean() < 0.05
    # a vertex mid-forearm follows the elbow only; one at the elbow blends both
    verts = arrays['v_template']
    mid_forearm = np.argmin(np.linalg.norm(verts - [0.56, 0.26, -0.04], axis=1))
    assert weights[mid_forearm, 18] > 0.99
    at_elbow = np.argmin(np.linalg.norm(verts - [0.435, 0.258, -0.04], axis=1))
    assert 0.2 < weights[at_elbow, 16] < 0.8 and 0.2 < weights[at_elbow, 18] < 0.8


def test_shape_components(standin):
    arrays, _ = standin
    verts, faces, dirs = arrays['v_template'], arrays['f'], arrays['shapedirs']
    betas = np.linspace(-3, 3, 7)
    heights = [_height(verts + b * dirs[..., 0]) for b in betas]
    assert np.all(np.diff(heights) > 0.04)  # beta0: ~5 cm taller per unit
    girth = [_volume(verts + b * dirs[..., 1], faces) for b in betas]
    assert np.all(np.diff(girth) > 0) and girth[-1] > 1.5 * girth[0]
    assert abs(_height(verts + 2 * dirs[..., 1]) - _height(verts)) < 0.005
    for k in range(2, 10):  # the rest: smaller, but each does something
        move = np.linalg.norm(dirs[..., k], axis=1).max()
        assert 0.003 < move < np.linalg.norm(dirs[..., 0], axis=1).max(), k
    # joints follow the shape: a taller body has longer shins
    regressor = arrays['J_regressor']
    shin = [np.linalg.norm((regressor @ (verts + b * dirs[..., 0]))[4] -
                           (regressor @ (verts + b * dirs[..., 0]))[7]) for b in (-2, 2)]
    assert shin[1] > shin[0] + 0.02


def test_smplx_loads_it_unchanged(tmp_path):
    paths = make_standin_files(str(tmp_path), seed=0)
    data = np.load(paths[0])
    model = smplx.SMPL(model_path=paths[0], data_struct=smplx.utils.Struct(**data))
    out = model(betas=torch.zeros(1, 10), body_pose=torch.zeros(1, 69),
                global_orient=torch.zeros(1, 3))
    np.testing.assert_allclose(out.joints[0, :24].detach().numpy(), DESIGN_JOINTS, atol=1e-6)
    np.testing.assert_allclose(out.vertices[0].detach().numpy(), data['v_template'], atol=1e-6)


def test_no_overwrite_without_force(tmp_path):
    make_standin_files(str(tmp_path), seed=0)
    with pytest.raises(FileExistsError, match='--force'):
        make_standin_files(str(tmp_path), seed=1)
    assert 'NOT SMPL' in (tmp_path / 'README.txt').read_text()
    make_standin_files(str(tmp_path), seed=1, force=True)
    rebuilt, _ = build_standin_arrays(seed=1)
    np.testing.assert_array_equal(np.load(tmp_path / 'SMPL_NEUTRAL_STANDIN.npz')['posedirs'],
                                  rebuilt['posedirs'])


def test_make_body_model_tool(tmp_path, capsys):
    path = Path(__file__).parents[3] / 'tools' / 'make_body_model.py'
    spec = importlib.util.spec_from_file_location('make_body_model', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(tmp_path / 'out')]) == 0
    assert osp.isfile(tmp_path / 'out' / 'J_regressor_h36m_STANDIN.npy')
    assert tool.main([str(tmp_path / 'out')]) == 1
    assert '--force' in capsys.readouterr().err


def test_ensure_standin_writes_once_and_never_over_a_user_file(tmp_path):
    from unspat_mm.datasets.synthetic import ensure_standin_body_model
    fresh = tmp_path / 'fresh'
    assert ensure_standin_body_model(str(fresh)) is True
    model_file = fresh / 'SMPL_NEUTRAL_STANDIN.npz'
    stamp = model_file.stat().st_mtime_ns
    assert ensure_standin_body_model(str(fresh)) is True
    assert model_file.stat().st_mtime_ns == stamp  # reused, not rewritten
    # a user's file in the folder wins and is left untouched
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'SMPL_NEUTRAL.pkl').write_bytes(b'not really a pickle')
    with pytest.raises(ValueError, match='convert_smpl_pkl'):
        ensure_standin_body_model(str(user))
    assert sorted(p.name for p in user.iterdir()) == ['SMPL_NEUTRAL.pkl']


def test_only_a_config_that_asks_for_the_standin_gets_one(tmp_path):
    from mmengine.config import Config

    from unspat_mm.datasets.synthetic import prepare_config_body_model
    embedded = Config.fromfile('configs/unspat_synthetic.py')
    assert embedded.standin_body_model_dir == embedded.model.head.body_model.model_dir
    embedded.standin_body_model_dir = str(tmp_path / 'standin')
    prepare_config_body_model(embedded)
    assert (tmp_path / 'standin' / 'SMPL_NEUTRAL_STANDIN.npz').is_file()
    paper = Config.fromfile('configs/unspat_3dpw.py')  # real SMPL only: nothing is written
    assert 'standin_body_model_dir' not in paper
    prepare_config_body_model(paper)


def test_concurrent_writers_each_find_a_whole_standin(tmp_path):
    """Distributed ranks call ensure_standin_body_model at once: every one of them returns
    only when the model and its regressor are complete."""
    import subprocess
    import sys
    target = str(tmp_path / 'shared')
    code = ('import sys; from unspat_mm.datasets.synthetic import ensure_standin_body_model; '
            'from unspat_mm.models.body import SMPLBodyModel; '
            'ensure_standin_body_model(sys.argv[1]); '
            'print(SMPLBodyModel(sys.argv[1]).is_standin)')
    procs = [subprocess.Popen([sys.executable, '-c', code, target], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ['True'] * 3
