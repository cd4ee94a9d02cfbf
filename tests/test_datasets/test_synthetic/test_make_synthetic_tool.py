import json
import os.path as osp

import cv2
import pytest

from tools.dataset_converters.make_synthetic import _parse_set, main


def test_parse_set():
    assert _parse_set(['num_frames=32', 'motion.walk_prob=0.8', 'image_size=(64, 80)',
                       'motion.source=mixed']) == dict(
                           num_frames=32, image_size=(64, 80),
                           motion=dict(walk_prob=.8, source='mixed'))
    with pytest.raises(ValueError, match='KEY=VALUE'):
        _parse_set(['num_frames'])


def test_generates_reports_and_checks_time(tmp_path, standin_model_dir, capsys):
    args = ['--cache-dir', str(tmp_path), '--body-model-dir', standin_model_dir, '--preset',
            'tiny', '--set', 'num_frames=6', '--set', 'image_size=(48, 48)', '--preview',
            str(tmp_path / 'preview.png')]
    assert main(args + ['--max-seconds', '600']) == 0
    out = capsys.readouterr().out
    assert 'STAND-IN, NOT SMPL' in out and 'mean-pose baseline MPJPE (test):' in out
    assert 'train: 3 sequences, 18 frames' in out
    preview = cv2.imread(str(tmp_path / 'preview.png'))
    assert preview.shape == (48, 8 * 48, 3)
    folder = out.split('synthetic set: ')[1].split('\n')[0]
    with open(osp.join(folder, 'meta.json')) as f:
        assert json.load(f)['settings']['num_frames'] == 6
    # the cached set is reused; a time limit below the recorded generation time fails
    assert main(args + ['--max-seconds', '0']) == 1
    assert 'FAIL: generation took' in capsys.readouterr().out
