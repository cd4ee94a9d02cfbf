"""SMPL body layer: theta, beta -> mesh and the joint sets unspat-mm uses.

A thin wrapper of :class:`smplx.SMPLLayer` that reads SMPL from a plain ``.npz`` (see
``tools/convert_smpl_pkl.py``), or the stand-in mannequin (``tools/make_body_model.py``)
through the very same code path, and adds HybrIK's 29 joints and the H36M/J14 joints of the
evaluation protocol. All outputs are in metres, in SMPL's local frame (no translation).

ONNX export: :func:`smplx.lbs.lbs` takes the batch size as a Python int
(``max(betas.shape[0], pose.shape[0])``) and builds ``view``/``expand``/``ones`` shapes and
a zero translation from it, which the TorchScript exporter freezes into the graph, so an
exported body would accept only the example's batch size. While exporting
(``torch.onnx.is_in_onnx_export()``) :meth:`SMPLBodyModel.forward` therefore runs the same
linear blend skinning, step by step on smplx's buffers and helpers, with shapes taken from
the tensors; eager calls keep smplx's own code.
"""
import contextlib
import io
import logging
import os.path as osp
import pickle

import numpy as np
import smplx
import torch
from einops import rearrange
from mmengine.logging import print_log
from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, vertices2joints
from torch import nn

from unspat_mm.registry import MODELS
from unspat_mm.structures.skeleton import (H36M_TO_J14, HYBRIK_PARENTS, LEAF_VERTEX_IDS,
                                           NUM_H36M_JOINTS, NUM_SMPL_JOINTS, SMPL_PARENTS)

NUM_VERTICES, NUM_FACES = 6890, 13776
# File names of the stand-in mannequin (``unspat_mm.datasets.synthetic.standin_body``).
STANDIN_MODEL_FILE = 'SMPL_{}_STANDIN.npz'
STANDIN_H36M_FILE = 'J_regressor_h36m_STANDIN.npy'
DEFAULT_H36M_REGRESSOR = 'J_regressor_h36m.npy'
GENDERS = ('neutral', 'male', 'female')
_GET_SMPL = ('Get SMPL from https://smpl.is.tue.mpg.de (free research licence) and convert the '
             '.pkl once with `python tools/convert_smpl_pkl.py SMPL_{G}.pkl {d}/SMPL_{G}.npz`, '
             'or, for tests and demos only, generate the neutral stand-in mannequin (not SMPL) '
             'with `python tools/make_body_model.py {d}`.')
# key: (shape with None = any size >= 10, dtype kind)
_LAYOUT = {
    'v_template': ((NUM_VERTICES, 3), 'f'),
    'shapedirs': ((NUM_VERTICES, 3, None), 'f'),
    'posedirs': ((NUM_VERTICES, 3, 9 * (NUM_SMPL_JOINTS - 1)), 'f'),
    'J_regressor': ((NUM_SMPL_JOINTS, NUM_VERTICES), 'f'),
    'weights': ((NUM_VERTICES, NUM_SMPL_JOINTS), 'f'),
    'kintree_table': ((2, NUM_SMPL_JOINTS), 'iu'),
    'f': ((NUM_FACES, 3), 'iu'),
}


def validate_body_model_arrays(arrays, source='body model'):
    """Check the 7 SMPL arrays (names, shapes, dtypes, values); return them as numpy arrays
    (a scipy-sparse ``J_regressor`` densified). Raises ValueError naming the bad key."""
    missing = [k for k in _LAYOUT if k not in arrays]
    if missing:
        raise ValueError(f'{source}: missing arrays {missing}; found {sorted(arrays)}. An SMPL '
                         f'model file holds {list(_LAYOUT)}.')
    out = {}
    for key, (shape, kinds) in _LAYOUT.items():
        value = arrays[key]
        if hasattr(value, 'toarray'):  # scipy.sparse J_regressor of the official files
            value = value.toarray()
        if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
            raise ValueError(f'{source}: `{key}` must be a numpy array of '
                             f'{"floats" if kinds == "f" else "integers"}, found '
                             f'{type(value).__name__} {getattr(value, "dtype", "")}. For an '
                             'official SMPL .pkl use tools/convert_smpl_pkl.py.')
        ok = value.ndim == len(shape) and all(
            s is None and n >= 10 or n == s for n, s in zip(value.shape, shape))
        if not ok:
            want = ', '.join('>=10' if s is None else str(s) for s in shape)
            raise ValueError(f'{source}: `{key}` has shape {value.shape}, expected ({want})')
        if kinds == 'f' and not np.isfinite(value).all():
            raise ValueError(f'{source}: `{key}` holds NaN or inf values')
        out[key] = value
    if out['f'].min() < 0 or out['f'].max() >= NUM_VERTICES:
        raise ValueError(f'{source}: `f` indexes vertices outside [0, {NUM_VERTICES})')
    tree = out['kintree_table'].astype(np.int64)
    if (tree[0, 1:] != SMPL_PARENTS[1:]).any() or (tree[1] != np.arange(NUM_SMPL_JOINTS)).any():
        raise ValueError(f'{source}: `kintree_table` is not SMPL\'s kinematic tree '
                         f'(parents {tree[0, 1:].tolist()}, expected {list(SMPL_PARENTS[1:])})')
    return out


def load_body_model_arrays(path, allow_pickle=False):
    """Load and validate the 7 SMPL arrays from an ``.npz`` (or, with ``allow_pickle``, a
    chumpy-free ``.pkl``): ``dict[str, np.ndarray]``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Body model file not found: {path}')
    if path.endswith('.pkl'):
        if not allow_pickle:
            raise ValueError(f'{path} is a pickle; pass allow_pickle=True to load it (trusted '
                             'files only) or convert it once with tools/convert_smpl_pkl.py.')
        try:
            with open(path, 'rb') as f:
                data = pickle.load(f, encoding='latin1')
        except ModuleNotFoundError as err:
            raise ValueError(
                f'{path} holds {err.name} objects (the official SMPL .pkl stores chumpy arrays, '
                'and chumpy does not import on current Python/numpy). Convert it once with '
                f'`python tools/convert_smpl_pkl.py {path} OUT.npz` and use the .npz.') from err
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a dict of arrays, found {type(data).__name__}')
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except ValueError as err:
            raise ValueError(f'{path}: not a plain-array .npz ({err})') from err
    return validate_body_model_arrays(data, source=path)


def resolve_body_model_file(model_dir, gender='neutral', allow_pickle=False):
    """Find the model file of ``gender`` in ``model_dir``; returns ``(path, is_standin)``.

    Order: ``SMPL_{G}.npz``; ``SMPL_{G}.pkl`` (only with ``allow_pickle``; without it a
    present .pkl is refused rather than silently replaced by the stand-in);
    ``SMPL_{G}_STANDIN.npz``.
    """
    if gender not in GENDERS:
        raise ValueError(f'gender must be one of {GENDERS}, got {gender!r}')
    if not osp.isdir(model_dir):
        raise FileNotFoundError(f'Body model directory {model_dir} does not exist. '
                                + _GET_SMPL.format(G=gender.upper(), d=model_dir))
    g = gender.upper()
    npz, pkl = osp.join(model_dir, f'SMPL_{g}.npz'), osp.join(model_dir, f'SMPL_{g}.pkl')
    standin = osp.join(model_dir, STANDIN_MODEL_FILE.format(g))
    if osp.isfile(npz):
        return npz, False
    if osp.isfile(pkl):
        if allow_pickle:
            return pkl, False
        raise ValueError(
            f'Found {pkl} but no {npz}. SMPL .pkl files are pickles (loading one can run code, '
            'and the official ones hold chumpy objects): convert it once with '
            f'`python tools/convert_smpl_pkl.py {pkl} {npz}` (recommended), or pass '
            'allow_pickle=True to SMPLBodyModel to unpickle a trusted, chumpy-free file.')
    if osp.isfile(standin):
        return standin, True
    raise FileNotFoundError(f'No SMPL body model in {model_dir}: looked for {osp.basename(npz)}, '
                            f'{osp.basename(pkl)} (with allow_pickle=True) and the stand-in '
                            f'{osp.basename(standin)}. ' + _GET_SMPL.format(G=g, d=model_dir))


def _load_h36m_regressor(model_dir, name, is_standin):
    """(17, 6890) float array. The stand-in has its own regressor: with the default name it
    is used in place of the real one (which does not fit the mannequin)."""
    if is_standin and name == DEFAULT_H36M_REGRESSOR and osp.isfile(
            osp.join(model_dir, STANDIN_H36M_FILE)):
        name = STANDIN_H36M_FILE
    path = name if osp.isabs(name) else osp.join(model_dir, name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'H36M joint regressor not found: {path}. It is the ({NUM_H36M_JOINTS}, '
            f'{NUM_VERTICES}) array J_regressor_h36m.npy shipped with the SPIN/VIBE/TCMR data '
            f'(e.g. SPIN\'s fetch_data.sh); put it in {model_dir} or pass h36m_regressor=PATH.'
            + (f' (The stand-in writes {STANDIN_H36M_FILE}.)' if is_standin else ''))
    regressor = np.load(path, allow_pickle=False)
    if regressor.shape != (NUM_H36M_JOINTS, NUM_VERTICES) or regressor.dtype.kind != 'f':
        raise ValueError(f'{path}: expected a ({NUM_H36M_JOINTS}, {NUM_VERTICES}) float array, '
                         f'found {regressor.shape} {regressor.dtype}')
    return regressor, path


@MODELS.register_module()
class SMPLBodyModel(nn.Module):
    """SMPL (or the stand-in mannequin) as a layer without learnable parameters.

    Args:
        model_dir (str): folder with ``SMPL_{GENDER}.npz`` (converted official model), or the
            stand-in ``SMPL_{GENDER}_STANDIN.npz``, or ``SMPL_{GENDER}.pkl`` with
            ``allow_pickle``; and the H36M regressor.
        gender (str): 'neutral', 'male' or 'female'. Defaults to 'neutral'.
        h36m_regressor (str): (17, 6890) ``.npy``, relative to ``model_dir`` or absolute.
            Defaults to ``DEFAULT_H36M_REGRESSOR`` = 'J_regressor_h36m.npy'.
        allow_pickle (bool): allow loading a (trusted, chumpy-free) ``.pkl``.
            Defaults to False.

    The body data are non-persistent buffers: checkpoints do not carry them, so a model
    trained with the stand-in loads onto real SMPL (and the other way) without mixing them.
    """

    def __init__(self, model_dir, gender='neutral', h36m_regressor=DEFAULT_H36M_REGRESSOR,
                 allow_pickle=False):
        super().__init__()
        self.model_path, self.is_standin = resolve_body_model_file(model_dir, gender,
                                                                   allow_pickle)
        arrays = load_body_model_arrays(self.model_path, allow_pickle=allow_pickle)
        regressor, self.h36m_regressor_path = _load_h36m_regressor(model_dir, h36m_regressor,
                                                                   self.is_standin)
        if self.is_standin:
            print_log(f'{self.model_path} is the STAND-IN mannequin, not SMPL: meshes, joints '
                      'and metrics computed with it are not SMPL numbers. ' +
                      _GET_SMPL.format(G=gender.upper(), d=model_dir),
                      logger='current', level=logging.WARNING)
        # smplx prints a warning for every 10-beta model (all SMPL releases are).
        with contextlib.redirect_stdout(io.StringIO()):
            self.smpl = smplx.SMPLLayer(model_path=self.model_path, gender=gender,
                                        data_struct=smplx.utils.Struct(**arrays))
        for module in self.smpl.modules():
            for name, buf in list(module.named_buffers(recurse=False)):
                module.register_buffer(name, buf, persistent=False)
        self.gender = gender
        self.register_buffer('faces', self.smpl.faces_tensor, persistent=False)
        self.register_buffer('parents', torch.tensor(HYBRIK_PARENTS), persistent=False)
        self.register_buffer('leaf_vertex_ids', torch.tensor(LEAF_VERTEX_IDS), persistent=False)
        self.register_buffer('h36m_to_j14', torch.tensor(H36M_TO_J14), persistent=False)
        self.register_buffer('j_regressor_h36m', torch.tensor(regressor, dtype=torch.float32),
                             persistent=False)

    @property
    def num_betas(self):
        return self.smpl.num_betas

    def _check_betas(self, betas, batch_size=None):
        if not torch.is_tensor(betas) or betas.ndim != 2 or betas.shape[1] != self.num_betas:
            raise ValueError(f'betas must be a (B, {self.num_betas}) tensor, got '
                             f'{tuple(betas.shape) if torch.is_tensor(betas) else type(betas)}')
        if batch_size is not None and betas.shape[0] != batch_size:
            raise ValueError(f'betas batch {betas.shape[0]} != pose batch {batch_size}')
        return betas.to(self.smpl.shapedirs.dtype)

    def _rotation_matrices(self, pose):
        """(B, 72) or (B, 24, 3) axis-angle, or (B, 24, 3, 3) rotations -> (B, 24, 3, 3)."""
        shape = tuple(pose.shape) if torch.is_tensor(pose) else type(pose)
        dtype = self.smpl.shapedirs.dtype
        if torch.is_tensor(pose) and pose.shape[1:] == (NUM_SMPL_JOINTS, 3, 3):
            return pose.to(dtype)
        if torch.is_tensor(pose) and pose.shape[1:] in ((NUM_SMPL_JOINTS * 3, ),
                                                        (NUM_SMPL_JOINTS, 3)):
            axis_angle = rearrange(pose.to(dtype), 'b ... -> b (...)')
            rotmats = batch_rodrigues(rearrange(axis_angle, 'b (j c) -> (b j) c', c=3))
            return rearrange(rotmats, '(b j) r c -> b j r c', j=NUM_SMPL_JOINTS)
        raise ValueError(f'pose must be (B, 72) or (B, 24, 3) axis-angle or (B, 24, 3, 3) '
                         f'rotation matrices, got {shape}')

    def forward(self, pose, betas):
        """Pose and shape the body.

        Args:
            pose (Tensor): (B, 72) or (B, 24, 3) axis-angle (radians), or (B, 24, 3, 3)
                rotation matrices; joint 0 is the global orientation.
            betas (Tensor): (B, 10) shape coefficients.

        Returns:
            dict: ``vertices`` (B, 6890, 3), ``joints24`` (B, 24, 3) SMPL joints,
            ``joints29`` (B, 29, 3) HybrIK joints (24 + head top, hand tips, toes read off
            the mesh), ``joints17`` (B, 17, 3) H36M joints from the regressor, ``joints14``
            (B, 14, 3) J14 evaluation joints. Metres, SMPL's local frame (no translation).
        """
        rotmats = self._rotation_matrices(pose)
        betas = self._check_betas(betas, rotmats.shape[0])
        if torch.onnx.is_in_onnx_export():
            vertices, joints24 = self._skin_for_export(rotmats, betas)
        else:
            out = self.smpl(betas=betas, global_orient=rotmats[:, :1],
                            body_pose=rotmats[:, 1:])
            vertices, joints24 = out.vertices, out.joints[:, :NUM_SMPL_JOINTS]
        joints29 = torch.cat([joints24, vertices[:, self.leaf_vertex_ids]], dim=1)
        joints17 = torch.einsum('jv,bvc->bjc', self.j_regressor_h36m.to(vertices.dtype),
                                vertices)
        return dict(vertices=vertices, joints24=joints24, joints29=joints29, joints17=joints17,
                    joints14=joints17[:, self.h36m_to_j14])

    def _skin_for_export(self, rotmats, betas):
        """smplx's ``lbs(..., pose2rot=False)`` with shapes read off the tensors, so that
        the exported graph keeps a dynamic batch (see the module docstring).

        Args:
            rotmats (Tensor): (B, 24, 3, 3) local rotations.
            betas (Tensor): (B, 10) shape coefficients.

        Returns:
            tuple: ``vertices`` (B, 6890, 3) and ``joints24`` (B, 24, 3), metres.
        """
        smpl = self.smpl
        v_shaped = smpl.v_template + blend_shapes(betas, smpl.shapedirs)
        rest_joints = vertices2joints(smpl.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        pose_feature = rearrange(rotmats[:, 1:] - eye, 'b j r c -> b (j r c)')
        v_posed = rearrange(pose_feature @ smpl.posedirs, 'b (v c) -> b v c', c=3) + v_shaped
        joints24, transforms = batch_rigid_transform(rotmats, rest_joints, smpl.parents,
                                                     dtype=rotmats.dtype)
        # per-vertex blend of the 24 rigid transforms, applied in homogeneous coordinates
        per_vertex = rearrange(smpl.lbs_weights @ rearrange(transforms, 'b j r c -> b j (r c)'),
                               'b v (r c) -> b v r c', r=4, c=4)
        homogeneous = torch.cat([v_posed, torch.ones_like(v_posed[..., :1])], dim=-1)
        vertices = (per_vertex @ homogeneous[..., None])[:, :, :3, 0]
        return vertices, joints24

    def rest_joints29(self, betas):
        """(B, 10) betas -> (B, 29, 3) joints of the shaped mesh at theta = 0 (metres,
        SMPL's local frame): the 24 regressed joints and the 5 leaf vertices."""
        betas = self._check_betas(betas)
        v_shaped = self.smpl.v_template + blend_shapes(betas, self.smpl.shapedirs)
        joints24 = vertices2joints(self.smpl.J_regressor, v_shaped)
        return torch.cat([joints24, v_shaped[:, self.leaf_vertex_ids]], dim=1)

    def extra_repr(self):
        kind = 'STAND-IN mannequin, not SMPL' if self.is_standin else 'SMPL'
        return f'{self.model_path} ({kind}), gender={self.gender}'
