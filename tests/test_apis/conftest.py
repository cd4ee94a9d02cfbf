"""Fixtures of the inference tests: a checkpoint of the embedded default written in the
project's format, and a video made of the tiny synthetic test split with its boxes."""
import pytest

from apis_helpers import (EMBEDDED, build_model, make_synthetic_video,  # noqa: F401
                          save_checkpoint)


@pytest.fixture(scope='session')
def embedded_checkpoint(tmp_path_factory, standin_model_dir):
    """``(path, model)``: the embedded default, initialised, saved weights-only."""
    model = build_model(EMBEDDED, standin_model_dir)
    path = tmp_path_factory.mktemp('ckpt') / 'embedded.pth'
    return save_checkpoint(model, path), model


@pytest.fixture(scope='session')
def synthetic_video(synthetic_tiny, standin_model_dir, tiny_settings, tmp_path_factory):
    """See :func:`apis_helpers.make_synthetic_video`."""
    return make_synthetic_video(synthetic_tiny, standin_model_dir, tiny_settings,
                                tmp_path_factory.mktemp('boxes'))
