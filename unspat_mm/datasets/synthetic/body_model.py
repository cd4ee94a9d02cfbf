"""Which body model drives the synthetic benchmark: the user's SMPL, else the stand-in.

Real SMPL and the stand-in mannequin go through the same code (``SMPLBodyModel``); only
the folder differs. The ground truth depends on the model, so the cache key of a
generated dataset includes a fingerprint of the model files.
"""
import hashlib
import logging
import os
import os.path as osp

from mmengine.logging import print_log

from unspat_mm.models.body.smpl_layer import SMPLBodyModel, resolve_body_model_file
from unspat_mm.models.body.standin import STANDIN_MODEL_FILE, make_standin_files

__all__ = ['prepare_body_model_dir', 'load_body_model', 'body_model_fingerprint']


def prepare_body_model_dir(body_model_dir=None, standin_dir='data/synthetic/body_model_standin',
                           gender='neutral'):
    """Return ``(model_dir, is_standin)`` for the synthetic data.

    ``body_model_dir`` is used when it holds SMPL (``SMPL_{G}.npz``) or a stand-in. When it
    is None, missing or holds no body model, the stand-in mannequin is generated once in
    ``standin_dir`` (reused afterwards) and a loud warning says that it is not SMPL. A
    ``SMPL_{G}.pkl`` without ``.npz`` is an error (convert it), never silently replaced.
    """
    if body_model_dir is not None:
        try:
            path, is_standin = resolve_body_model_file(body_model_dir, gender)
        except FileNotFoundError:
            pass
        else:
            if is_standin:
                print_log(f'Synthetic data: {path} is the STAND-IN mannequin, not SMPL.',
                          logger='current', level=logging.WARNING)
            return body_model_dir, is_standin
    standin_file = osp.join(standin_dir, STANDIN_MODEL_FILE.format(gender.upper()))
    if not osp.isfile(standin_file):
        if gender != 'neutral':
            raise FileNotFoundError(f'No {gender} body model in {body_model_dir} and the '
                                    'stand-in exists only as a neutral model.')
        os.makedirs(standin_dir, exist_ok=True)
        make_standin_files(standin_dir)
    print_log(
        '=' * 79 + '\nSynthetic data: NO SMPL FOUND'
        + (f' in {body_model_dir}' if body_model_dir else '') + f'; using the STAND-IN '
        f'mannequin in {standin_dir}.\nIt is NOT SMPL: poses, meshes and metrics are stand-in '
        'numbers. For SMPL put SMPL_NEUTRAL.npz (tools/convert_smpl_pkl.py) into the body '
        'model folder.\n' + '=' * 79, logger='current', level=logging.WARNING)
    return standin_dir, True


def load_body_model(model_dir, gender='neutral'):
    """``SMPLBodyModel`` of ``model_dir`` in evaluation mode."""
    return SMPLBodyModel(model_dir, gender=gender).eval()


def body_model_fingerprint(body_model):
    """Short hash of the files a ``SMPLBodyModel`` was built from (model and H36M
    regressor)."""
    digest = hashlib.sha1()
    for path in (body_model.model_path, body_model.h36m_regressor_path):
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()[:16]
