"""The paper configuration's size against the paper's Table 3 (printed in the log)."""
from mmengine.config import Config

from tools.analysis.get_flops import PAPER, analyse, format_table


def test_paper_config_lands_within_15_percent_of_table_3():
    rows = analyse(Config.fromfile('configs/unspat_3dpw.py'), num_frames=16, input_size=256)
    print('\n' + format_table(rows, 16, 256))
    params, gflops = rows['neck+head']
    assert abs(params / PAPER['params_m'] - 1) <= 0.15
    assert abs(gflops / PAPER['gflops'] - 1) <= 0.15
    # ResNet-34 on 16 frames of 256x256: 21.3M parameters, ~4.8 GMACs a frame
    assert abs(rows['backbone'][0] - 21.28) < 0.01
    assert 4.5 < rows['backbone'][1] / 16 < 5.0
    # the IK and the body model add no parameters
    assert rows['IK+SMPL'][0] == 0
