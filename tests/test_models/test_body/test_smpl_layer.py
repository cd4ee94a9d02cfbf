import os.path as osp
import pickle
import shutil
from unittest import mock

import numpy as np
import pytest
import smplx
import torch
from scipy.spatial.transform import Rotation

from unspat_mm.datasets.synthetic.standin_body import DESIGN_JOINTS, DESIGN_LEAVES
from unspat_mm.models.body import SMPLBodyModel, load_body_model_arrays
from unspat_mm.registry import MODELS
from unspat_mm.structures.skeleton import H36M_TO_J14, HYBRIK_PARENTS, LEAF_VERTEX_IDS

STANDIN = 'SMPL_NEUTRAL_STANDIN.npz'
STANDIN_H36M = 'J_regressor_h36m_STANDIN.npy'


@pytest.fixture(scope='module')
def body(standin_model_dir):
    return SMPLBodyModel(standin_model_dir)


@pytest.fixture(scope='module')
def arrays(standin_model_dir):
    with np.load(osp.join(standin_model_dir, STANDIN)) as data:
        return {k: data[k] for k in data.files}


def _random_params(batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return 0.5 * torch.randn(batch, 72, generator=gen), torch.randn(batch, 10, generator=gen)


def _numpy_lbs(arrays, rotmats, betas):
    """Independent float64 reference of SMPL's skinning, written from the SMPL paper."""
    parents = arrays['kintree_table'][0].astype(np.int64)
    v_shaped = arrays['v_template'] + arrays['shapedirs'] @ betas
    joints = arrays['J_regressor'] @ v_shaped
    feature = (rotmats[1:] - np.eye(3)).ravel()
    v_posed = v_shaped + arrays['posedirs'] @ feature
    world = np.zeros((24, 4, 4))
    for j in range(24):
        local = np.eye(4)
        local[:3, :3] = rotmats[j]
        local[:3, 3] = joints[j] - (joints[parents[j]] if j else 0)
        world[j] = world[parents[j]] @ local if j else local
    skin = world.copy()
    skin[:, :3, 3] -= np.einsum('jab,jb->ja', world[:, :3, :3], joints)
    per_vertex = np.einsum('vj,jab->vab', arrays['weights'], skin)
    return np.einsum('vab,vb->va', per_vertex[:, :3, :3], v_posed) + per_vertex[:, :3, 3]


def test_matches_smplx_and_reference_lbs(body, arrays, standin_model_dir):
    pose, betas = _random_params(3)
    out = body(pose, betas)
    path = osp.join(standin_model_dir, STANDIN)
    direct = smplx.SMPL(model_path=path, data_struct=smplx.utils.Struct(**arrays))(
        global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas)
    torch.testing.assert_close(out['vertices'], direct.vertices, atol=1e-6, rtol=0)
    torch.testing.assert_close(out['joints24'], direct.joints[:, :24], atol=1e-6, rtol=0)
    rotmats = Rotation.from_rotvec(pose.reshape(-1, 3).double().numpy()).as_matrix()
    for b in range(3):
        ref = _numpy_lbs(arrays, rotmats[24 * b:24 * (b + 1)], betas[b].double().numpy())
        np.testing.assert_allclose(out['vertices'][b].numpy(), ref, atol=2e-5)


def test_pose_formats_agree(body):
    pose, betas = _random_params(2, seed=1)
    rotmats = torch.from_numpy(
        Rotation.from_rotvec(pose.reshape(-1, 3).double().numpy()).as_matrix()).float()
    a = body(pose, betas)
    b = body(rotmats.reshape(2, 24, 3, 3), betas)
    c = body(pose.reshape(2, 24, 3), betas)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0)
        torch.testing.assert_close(a[key], c[key], atol=0, rtol=0)


def test_joint_sets(body, standin_model_dir):
    pose, betas = _random_params(2, seed=2)
    out = body(pose, betas)
    verts = out['vertices']
    torch.testing.assert_close(out['joints29'][:, :24], out['joints24'], atol=0, rtol=0)
    torch.testing.assert_close(out['joints29'][:, 24:], verts[:, list(LEAF_VERTEX_IDS)],
                               atol=0, rtol=0)
    regressor = np.load(osp.join(standin_model_dir, STANDIN_H36M))
    joints17 = np.einsum('jv,bvc->bjc', regressor, verts.double().numpy())
    np.testing.assert_allclose(out['joints17'].numpy(), joints17, atol=1e-5)
    np.testing.assert_allclose(out['joints14'].numpy(), joints17[:, list(H36M_TO_J14)], atol=1e-5)
    assert body.parents.tolist() == list(HYBRIK_PARENTS)
    assert body.faces.shape == (13776, 3) and body.faces.dtype == torch.long
    assert body.num_betas == 10


def test_rest_joints29(body, arrays):
    _, betas = _random_params(2, seed=3)
    rest = body.rest_joints29(betas)
    posed = body(torch.zeros(2, 72), betas)['joints29']
    torch.testing.assert_close(rest, posed, atol=1e-6, rtol=0)
    v_shaped = arrays['v_template'] + arrays['shapedirs'] @ betas[1].double().numpy()
    np.testing.assert_allclose(rest[1, :24].numpy(), arrays['J_regressor'] @ v_shaped, atol=1e-5)
    zero = body.rest_joints29(torch.zeros(1, 10))[0].numpy()
    np.testing.assert_allclose(zero, np.concatenate([DESIGN_JOINTS, DESIGN_LEAVES]), atol=1e-6)
    # the global orientation rotates the whole body about the pelvis
    rot = torch.tensor(Rotation.from_rotvec([0, np.pi / 2, 0]).as_matrix(), dtype=torch.float32)
    pose = torch.eye(3).repeat(1, 24, 1, 1)
    pose[0, 0] = rot
    turned = body(pose, betas[:1])['joints29'][0]
    pelvis = rest[0, 0]
    torch.testing.assert_close(turned, (rest[0] - pelvis) @ rot.T + pelvis, atol=1e-5, rtol=0)


def test_differentiable_and_config_buildable(standin_model_dir):
    body = MODELS.build(dict(type='SMPLBodyModel', model_dir=standin_model_dir))
    assert body.state_dict() == {}  # checkpoints never carry (or overwrite) body data
    pose, betas = _random_params(1, seed=4)
    pose.requires_grad_(True)
    betas.requires_grad_(True)
    body(pose, betas)['joints14'].sum().backward()
    assert pose.grad.abs().sum() > 0 and betas.grad.abs().sum() > 0
    out64 = body.double()(pose.detach().double(), betas.detach().double())
    assert out64['vertices'].dtype == torch.float64


def test_standin_warns(standin_model_dir):
    with mock.patch('unspat_mm.models.body.smpl_layer.print_log') as log:
        body = SMPLBodyModel(standin_model_dir)
    assert body.is_standin
    message = log.call_args[0][0]
    assert 'STAND-IN' in message and 'not SMPL' in message


def _copy_standin(src, dst, as_name):
    shutil.copy(osp.join(src, STANDIN), osp.join(dst, as_name))
    shutil.copy(osp.join(src, STANDIN_H36M), osp.join(dst, STANDIN_H36M))


def test_file_resolution(standin_model_dir, tmp_path, arrays):
    _copy_standin(standin_model_dir, tmp_path, 'SMPL_NEUTRAL.npz')
    # a "real" model needs the real regressor: the stand-in one does not fit SMPL
    with pytest.raises(FileNotFoundError, match=r'J_regressor_h36m.npy.*\(17, 6890\)'):
        SMPLBodyModel(str(tmp_path))
    shutil.copy(tmp_path / STANDIN_H36M, tmp_path / 'J_regressor_h36m.npy')
    body = SMPLBodyModel(str(tmp_path))
    assert not body.is_standin and body.model_path.endswith('SMPL_NEUTRAL.npz')
    np.save(tmp_path / 'wrong.npy', np.zeros((14, 6890)))
    with pytest.raises(ValueError, match=r'\(17, 6890\).*\(14, 6890\)'):
        SMPLBodyModel(str(tmp_path), h36m_regressor=str(tmp_path / 'wrong.npy'))
    with pytest.raises(FileNotFoundError, match='SMPL_MALE.npz.*SMPL_MALE_STANDIN.npz'):
        SMPLBodyModel(str(tmp_path), gender='male')
    with pytest.raises(ValueError, match='gender'):
        SMPLBodyModel(str(tmp_path), gender='robot')


def test_pickle_needs_opt_in(standin_model_dir, tmp_path, arrays, body):
    with open(tmp_path / 'SMPL_NEUTRAL.pkl', 'wb') as f:
        pickle.dump(arrays, f)
    _copy_standin(standin_model_dir, tmp_path, STANDIN)  # a present .pkl still wins
    with pytest.raises(ValueError) as err:
        SMPLBodyModel(str(tmp_path))
    assert 'allow_pickle=True' in str(err.value)
    assert 'tools/convert_smpl_pkl.py' in str(err.value)
    opted = SMPLBodyModel(str(tmp_path), allow_pickle=True,
                          h36m_regressor=str(tmp_path / STANDIN_H36M))
    assert opted.model_path.endswith('.pkl')
    pose, betas = _random_params(1, seed=5)
    torch.testing.assert_close(opted(pose, betas)['vertices'], body(pose, betas)['vertices'])


def test_missing_model_message(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        SMPLBodyModel(str(tmp_path))
    message = str(err.value)
    for part in ('SMPL_NEUTRAL.npz', 'SMPL_NEUTRAL.pkl', 'SMPL_NEUTRAL_STANDIN.npz',
                 'smpl.is.tue.mpg.de', 'tools/make_body_model.py', 'tools/convert_smpl_pkl.py'):
        assert part in message
    with pytest.raises(FileNotFoundError, match='does not exist'):
        SMPLBodyModel(str(tmp_path / 'nowhere'))


@pytest.mark.parametrize('key,shape', [('shapedirs', (6890, 3, 5)), ('posedirs', (6890, 3, 200)),
                                       ('J_regressor', (23, 6890)), ('f', (13775, 3))])
def test_wrong_shape_names_the_key(arrays, tmp_path, key, shape):
    bad = dict(arrays)
    bad[key] = np.zeros(shape, dtype=arrays[key].dtype)
    np.savez(tmp_path / 'bad.npz', **bad)
    with pytest.raises(ValueError) as err:
        load_body_model_arrays(str(tmp_path / 'bad.npz'))
    assert f'`{key}`' in str(err.value) and str(shape) in str(err.value)


def test_missing_key_and_bad_tree(arrays, tmp_path):
    np.savez(tmp_path / 'missing.npz', **{k: v for k, v in arrays.items() if k != 'weights'})
    with pytest.raises(ValueError, match=r"missing arrays \['weights'\]"):
        load_body_model_arrays(str(tmp_path / 'missing.npz'))
    tree = arrays['kintree_table'].copy()
    tree[0, 5] = 1
    np.savez(tmp_path / 'tree.npz', **dict(arrays, kintree_table=tree))
    with pytest.raises(ValueError, match='kinematic tree'):
        load_body_model_arrays(str(tmp_path / 'tree.npz'))


def test_bad_inputs(body):
    with pytest.raises(ValueError, match=r'pose must be .*got \(2, 69\)'):
        body(torch.zeros(2, 69), torch.zeros(2, 10))
    with pytest.raises(ValueError, match=r'betas must be a \(B, 10\) tensor, got \(2, 16\)'):
        body(torch.zeros(2, 72), torch.zeros(2, 16))
    with pytest.raises(ValueError, match='batch'):
        body(torch.zeros(2, 72), torch.zeros(3, 10))
    with pytest.raises(ValueError, match='betas'):
        body.rest_joints29(torch.zeros(10))


def test_constructing_on_an_empty_folder_writes_nothing(tmp_path):
    from unspat_mm.models.body import SMPLBodyModel
    empty = tmp_path / 'fresh'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='make_body_model.py'):
        SMPLBodyModel(str(empty))  # the error says how to get a body model
    assert list(empty.iterdir()) == []
