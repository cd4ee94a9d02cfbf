"""Fixtures shared by the whole test suite."""
import pytest
import torch

# A small but complete synthetic set: every split, occlusions in every sequence.
TINY_SETTINGS = dict(num_sequences=dict(train=3, val=1, test=2), num_frames=20,
                     image_size=(96, 96), occlusion=dict(seq_prob=1.))


@pytest.fixture(scope='session')
def standin_model_dir(tmp_path_factory):
    """Path (str) of a folder holding the stand-in body model, generated once per session
    with seed 0: ``SMPL_NEUTRAL_STANDIN.npz``, ``J_regressor_h36m_STANDIN.npy``, README.txt.

    ``SMPLBodyModel(standin_model_dir)`` loads it. It is a mannequin with SMPL's array
    layout, not SMPL (see unspat_mm/datasets/synthetic/standin_body.py). Treat the folder
    as read-only.
    """
    from unspat_mm.datasets.synthetic.standin_body import make_standin_files
    out_dir = tmp_path_factory.mktemp('standin_body_model')
    make_standin_files(str(out_dir), seed=0)
    return str(out_dir)


@pytest.fixture
def one_thread():
    """Many tiny ops: a second thread only adds synchronisation, and on a
    shared machine it can make the loop several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_settings():
    """Overrides of the synthetic defaults used by :func:`synthetic_tiny`."""
    return TINY_SETTINGS


@pytest.fixture(scope='session')
def synthetic_tiny(tmp_path_factory, standin_model_dir):
    """``(cache_dir, dataset_dir)`` of the tiny synthetic set (stand-in body model),
    generated once per session (about a second)."""
    from unspat_mm.datasets.synthetic import ensure_synthetic_dataset
    cache_dir = str(tmp_path_factory.mktemp('synthetic_cache'))
    return cache_dir, ensure_synthetic_dataset(TINY_SETTINGS, cache_dir, standin_model_dir)
