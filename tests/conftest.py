"""Fixtures shared by the whole test suite."""
import pytest
import torch


@pytest.fixture(scope='session')
def standin_model_dir(tmp_path_factory):
    """Path (str) of a folder holding the stand-in body model, generated once per session
    with seed 0: ``SMPL_NEUTRAL_STANDIN.npz``, ``J_regressor_h36m_STANDIN.npy``, README.txt.

    ``SMPLBodyModel(standin_model_dir)`` loads it. It is a mannequin with SMPL's array
    layout, not SMPL (see unspat_mm/models/body/standin.py). Treat the folder as read-only.
    """
    from unspat_mm.models.body.standin import make_standin_files
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
