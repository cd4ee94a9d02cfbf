"""The paper configuration's size against the paper's Table 3 (printed in the log)."""
import inspect

from mmengine.config import Config

from tools.analysis.get_flops import PAPER, analyse, format_table
from unspat_mm.models.necks import UNSPATNeck

# HybrIK's head on 8x8x512 maps: three 4x4 transposed convolutions (no bias) with BN, the
# 1x1 convolution to 29 x 64 channels, fc1 / fc2 and the four regressors (46 + 10 + 3 + 29)
HEAD_PARAMS = (512 * 256 * 16 + 2 * 256 * 256 * 16 + 3 * 2 * 256 + (256 + 1) * 29 * 64
               + (512 + 1) * 1024 + (1024 + 1) * 1024 + (1024 + 1) * (46 + 10 + 3 + 29))


def test_paper_config_against_table_3():
    rows = analyse(Config.fromfile('configs/unspat_3dpw.py'), num_frames=16, input_size=256)
    print('\n' + format_table(rows, 16, 256))
    assert round(rows['head'][0] * 1e6) == HEAD_PARAMS  # 6.34M
    assert abs(rows['head'][1] - 3.43) < 0.01
    assert abs(rows['neck'][0] - 6.86) < 0.01 and abs(rows['neck'][1] - 6.69) < 0.01
    params, gflops = rows['neck+head']
    # FFN ratio 2: parameters +11.9% (within +-15%), FLOPs -21.5% (outside: no ratio fits
    # both with HybrIK's head, see UNSPATNeck's ffn_ratio)
    assert abs(params / PAPER['params_m'] - 1 - 0.119) < 0.002
    assert abs(gflops / PAPER['gflops'] - 1 + 0.215) < 0.002
    # ResNet-34 on 16 frames of 256x256: 21.3M parameters, ~4.8 GMACs a frame
    assert abs(rows['backbone'][0] - 21.28) < 0.01
    assert 4.5 < rows['backbone'][1] / 16 < 5.0
    # the IK and the body model add no parameters
    assert rows['IK+SMPL'][0] == 0


def test_one_ffn_ratio_default():
    """Issue #17: the neck's default is the paper config's; the tiny model sets its own."""
    assert inspect.signature(UNSPATNeck).parameters['ffn_ratio'].default == 2.0
    for config in ('configs/_base_/models/unspat_r34.py', 'configs/unspat_3dpw.py'):
        assert 'ffn_ratio' not in Config.fromfile(config).model.neck, config
    with open('configs/_base_/models/unspat_tiny.py') as f:
        assert 'ffn_ratio=2.0' in f.read()
