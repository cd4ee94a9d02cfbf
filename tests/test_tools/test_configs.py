"""Every shipped config composes and builds; the ablations differ only where Table 4 says."""
import glob

import pytest
import torch
from mmengine.config import Config

from unspat_mm.registry import MODELS

ABLATIONS = {  # file -> (attention, use_sam, use_uncertainty), paper Table 4
    'unspat_synthetic_full_attention': ('full', False, False),
    'unspat_synthetic_s2b': ('space2batch', False, False),
    'unspat_synthetic_s2b_unc': ('space2batch', False, True),
    'unspat_synthetic_s2b_sam': ('space2batch', True, False),
    'unspat_synthetic_gap_temporal': ('gap_temporal', True, True),
}


def test_every_ablation_config_is_listed():
    found = {p.split('/')[-1][:-3] for p in glob.glob('configs/ablations/*.py')}
    assert found == set(ABLATIONS)


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_ablation_builds_with_its_flags(name, standin_model_dir):
    cfg = Config.fromfile(f'configs/ablations/{name}.py')
    main = Config.fromfile('configs/unspat_synthetic.py')
    attention, use_sam, use_unc = ABLATIONS[name]
    neck = cfg.model.neck
    assert (neck.attention, neck.use_sam, neck.use_uncertainty) == (attention, use_sam, use_unc)
    assert cfg.train_dataloader == main.train_dataloader  # same data as the main job
    cfg.model.head.body_model.model_dir = standin_model_dir
    model = MODELS.build(cfg.model).eval()
    assert (model.neck.sam is not None) == use_sam
    assert (model.neck.estimator is not None) == use_unc
    with torch.no_grad():
        out = model(torch.zeros(1, 8, 3, 64, 64), mode='tensor')
    assert torch.isfinite(out['vertices']).all()


def test_every_config_is_in_the_metafile_and_the_configs_readme():
    """mmpose's model-index convention: each shipped config is listed once, with its data
    and its results (or "not yet run"), and every listed config exists."""
    import yaml
    with open('model-index.yml') as f:
        assert yaml.safe_load(f) == {'Import': ['configs/metafile.yml']}
    with open('configs/metafile.yml') as f:
        models = yaml.safe_load(f)['Models']
    listed = [m['Config'] for m in models]
    shipped = sorted(p for p in glob.glob('configs/**/*.py', recursive=True)
                     if '/_base_/' not in p)
    assert sorted(listed) == shipped
    readme = open('configs/README.md').read()
    for model in models:
        assert model['Config'][len('configs/'):] in readme, model['Config']
        assert model['Results'] == 'not yet run' or all(
            {'Task', 'Dataset', 'Metrics'} <= set(r) for r in model['Results']), model['Name']
        assert model['Metadata']['Training Data'], model['Name']
