import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from unspat_mm.datasets.annotation_format import load_video_annotations
from unspat_mm.testing import tree_digest, write_humandata_fixture, write_pw3d_fixture

TOOLS = Path(__file__).parents[3] / 'tools' / 'dataset_converters'


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'{name}_converter_cli', TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pw3d_cli(tmp_path, capsys):
    cli = _tool('pw3d')
    root = tmp_path / '3dpw'
    truth = write_pw3d_fixture(str(root), splits=('validation', 'test'), num_frames=4)
    out = tmp_path / 'ann'
    assert cli.main([str(root), str(out), '--splits', 'test', 'validation']) == 0
    assert 'test: wrote' in capsys.readouterr().out
    for split in ('test', 'validation'):
        got = load_video_annotations(str(out / f'pw3d_{split}.npz'))
        np.testing.assert_allclose(got['keypoints2d'], truth['arrays'][split]['keypoints2d'],
                                   atol=1e-3)
    before = (out / 'pw3d_test.npz').read_bytes()
    assert cli.main([str(root), str(out), '--splits', 'test']) == 1
    err = capsys.readouterr().err
    assert 'pw3d_test.npz already exists' in err and '--overwrite' in err
    assert (out / 'pw3d_test.npz').read_bytes() == before
    assert cli.main([str(root), str(out), '--splits', 'test', '--overwrite']) == 0


def test_pw3d_cli_refuses_malicious_pickle(tmp_path, capsys):
    cli = _tool('pw3d')
    root = tmp_path / '3dpw'
    (root / 'sequenceFiles' / 'test').mkdir(parents=True)
    marker = tmp_path / 'ran'

    class Exploit:
        def __reduce__(self):
            return os.system, (f'touch {marker}', )

    (root / 'sequenceFiles' / 'test' / 'evil.pkl').write_bytes(
        pickle.dumps({'sequence': Exploit()}, protocol=2))
    before = tree_digest(str(root))
    assert cli.main([str(root), str(tmp_path / 'out'), '--splits', 'test']) == 1
    assert 'refusing to unpickle' in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / 'out').exists()
    assert tree_digest(str(root)) == before


def test_humandata_cli(tmp_path, capsys):
    cli = _tool('humandata')
    data = tmp_path / 'data'
    truth = write_humandata_fixture(str(data / 'npz' / 'mpi_inf_3dhp_test.npz'), 'mpi_inf_3dhp',
                                    image_root=str(data / 'mpi_inf_3dhp'))
    out = tmp_path / 'ann' / 'mpi_inf_3dhp_test.npz'
    args = [truth['path'], str(out), '--dataset', 'mpi_inf_3dhp', '--image-root',
            str(data / 'mpi_inf_3dhp')]
    assert cli.main(args) == 0
    got = load_video_annotations(str(out))
    np.testing.assert_allclose(got['gt_joints17'], truth['arrays']['gt_joints17'], atol=1e-5)
    assert str(got['dataset_name']) == 'mpi_inf_3dhp'
    capsys.readouterr()
    assert cli.main(args) == 1 and 'already exists' in capsys.readouterr().err
    assert cli.main(args + ['--overwrite']) == 0
    assert cli.main([truth['path'], str(tmp_path / 'x.npz'), '--dataset', 'h36m',
                     '--strip-prefix', 'nothing/']) == 0  # h36m reading of a 3DHP file
    with pytest.raises(SystemExit):
        cli.main([truth['path'], str(out), '--dataset', 'coco'])
