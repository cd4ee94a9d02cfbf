"""Fixtures of the dataset tests: a tiny synthetic set, generated once per session."""
import pytest

# Small but complete: every split, occlusions in every sequence.
TINY_SETTINGS = dict(num_sequences=dict(train=3, val=1, test=2), num_frames=20,
                     image_size=(96, 96), occlusion=dict(seq_prob=1.))


@pytest.fixture(scope='session')
def tiny_settings():
    """Overrides of the synthetic defaults used by :func:`synthetic_tiny`."""
    return TINY_SETTINGS


@pytest.fixture(scope='session')
def body_model(standin_model_dir):
    from unspat_mm.datasets.synthetic import load_body_model
    return load_body_model(standin_model_dir)


@pytest.fixture(scope='session')
def synthetic_tiny(tmp_path_factory, standin_model_dir):
    """``(cache_dir, dataset_dir)`` of the tiny set, made with the stand-in body model."""
    from unspat_mm.datasets.synthetic import ensure_synthetic_dataset
    cache_dir = str(tmp_path_factory.mktemp('synthetic_cache'))
    return cache_dir, ensure_synthetic_dataset(TINY_SETTINGS, cache_dir, standin_model_dir)
