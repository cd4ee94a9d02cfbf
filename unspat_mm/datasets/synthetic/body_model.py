"""Which body model drives the synthetic benchmark: the user's SMPL, else the stand-in.

Real SMPL and the stand-in mannequin go through the same code (``SMPLBodyModel``); only
the folder differs. The ground truth depends on the model, so the cache key of a
generated dataset includes a fingerprint of the model files.
"""
import hashlib
import logging
import time

from mmengine.logging import print_log

from unspat_mm.models.body.smpl_layer import SMPLBodyModel, resolve_body_model_file

from .standin_body import make_standin_files

__all__ = ['prepare_body_model_dir', 'ensure_standin_body_model', 'prepare_config_body_model',
           'load_body_model', 'body_model_fingerprint']


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
    ensure_standin_body_model(standin_dir, gender)
    print_log(
        '=' * 79 + '\nSynthetic data: NO SMPL FOUND'
        + (f' in {body_model_dir}' if body_model_dir else '') + f'; using the STAND-IN '
        f'mannequin in {standin_dir}.\nIt is NOT SMPL: poses, meshes and metrics are stand-in '
        'numbers. For SMPL put SMPL_NEUTRAL.npz (tools/convert_smpl_pkl.py) into the body '
        'model folder.\n' + '=' * 79, logger='current', level=logging.WARNING)
    return standin_dir, True


def ensure_standin_body_model(model_dir, gender='neutral'):
    """Write the stand-in mannequin (NOT SMPL) into ``model_dir`` unless the folder already
    holds a body model; return ``is_standin`` of what the folder then holds.

    A user's file is never replaced: SMPL (``SMPL_{G}.npz``) or a stand-in is used as it is,
    and a ``SMPL_{G}.pkl`` without its ``.npz`` is an error that says how to convert it.
    Safe when several processes (distributed ranks) call it at once.
    """
    try:
        return resolve_body_model_file(model_dir, gender)[1]
    except FileNotFoundError:
        pass
    if gender != 'neutral':
        raise FileNotFoundError(f'No {gender} body model in {model_dir}, and the stand-in '
                                'exists only as a neutral model.')
    print_log(f'No body model in {model_dir}: writing the STAND-IN mannequin there (not SMPL).',
              logger='current', level=logging.WARNING)
    try:
        make_standin_files(model_dir)
    except FileExistsError:  # another process is writing it: its model file comes last
        deadline = time.monotonic() + 300
        while True:
            try:
                return resolve_body_model_file(model_dir, gender)[1]
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    return True


def prepare_config_body_model(cfg):
    """The explicit step that makes a config's stand-in body model: when ``cfg`` sets
    ``standin_body_model_dir`` (the embedded default does), write the stand-in there unless
    the folder holds a body model already (:func:`ensure_standin_body_model`).
    ``tools/train.py`` and ``tools/test.py`` call it before building the model; models never
    write files themselves."""
    model_dir = cfg.get('standin_body_model_dir')
    if model_dir:
        ensure_standin_body_model(model_dir)


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
