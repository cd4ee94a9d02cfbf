"""A shortened main job end to end through the command-line tools: train a few
iterations on a tiny synthetic set, resume, test, metrics and baseline printed."""
import pytest
import torch

from tools import test as test_tool
from tools import train as train_tool


@pytest.fixture(scope='module')
def short_job(tmp_path_factory, standin_model_dir):
    root = tmp_path_factory.mktemp('job')
    options = [
        f'model.head.body_model.model_dir={standin_model_dir}',
        f'body_model_dir={standin_model_dir}', f'standin_body_model_dir={standin_model_dir}',
        *[f'{evaluator}.body_model.model_dir={standin_model_dir}'
          for evaluator in ('val_evaluator', 'test_evaluator.0')],
        *[f'{split}_dataloader.dataset.{key}' for split in ('train', 'val', 'test')
          for key in (f'cache_dir={root}/data', 'preset=tiny',
                      f'body_model_dir={standin_model_dir}')],
        *[f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
          for key in ('batch_size=2', 'num_workers=0', 'persistent_workers=False')],
        'train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'param_scheduler.0.T_max=4',
        'param_scheduler.0.end=4',  # else mmengine cuts the schedule at max_iters
    ]
    return root, options


def test_short_main_job_trains_resumes_and_tests(short_job, capsys):
    root, options = short_job
    runner = train_tool.main(['configs/unspat_synthetic.py', '--work-dir', f'{root}/wd',
                              '--cfg-options', *options])
    assert runner.iter == 4 and (root / 'wd' / 'iter_4.pth').is_file()
    final = {k: v.clone() for k, v in runner.model.state_dict().items()}
    # interrupt after iteration 2 and resume: the same weights as the uninterrupted run
    train_tool.main(['configs/unspat_synthetic.py', '--work-dir', f'{root}/cut',
                     '--cfg-options', *options, 'train_cfg.max_iters=2'])
    resumed = train_tool.main(['configs/unspat_synthetic.py', '--work-dir', f'{root}/cut',
                               '--resume', '--cfg-options', *options])
    for key, value in final.items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=1e-6,
                                   msg=key)
    capsys.readouterr()
    metrics, baseline = test_tool.main(['configs/unspat_synthetic.py', str(root / 'wd/iter_4.pth'),
                                        '--work-dir', f'{root}/test', '--baseline',
                                        '--dump', f'{root}/preds.npz', '--cfg-options', *options])
    printed = capsys.readouterr().out
    print(printed)
    for name in ('MPJPE', 'PA-MPJPE', 'MPVPE', 'Accel'):
        assert name in printed and metrics[name] > 0
    assert baseline['MPJPE'] > 0 and (root / 'preds.npz').is_file()
