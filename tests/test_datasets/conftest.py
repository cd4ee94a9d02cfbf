"""Fixtures of the dataset tests (the tiny synthetic set is in tests/conftest.py)."""
import pytest


@pytest.fixture(scope='session')
def body_model(standin_model_dir):
    from unspat_mm.datasets.synthetic import load_body_model
    return load_body_model(standin_model_dir)
