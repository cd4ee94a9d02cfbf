# Test a model trained with configs/unspat_3dpw.py (or _wo3dpw.py) on the 3DPW test set as
# Tables 1-2 report it: J14 joints from the neutral-SMPL ground-truth mesh, hip-midpoint
# root, campose_valid frames only, and TCMR's Accel (invalid frames removed first, the
# rest treated as consecutive).
#   python tools/test.py configs/test/3dpw.py CHECKPOINT
_base_ = ['../unspat_3dpw.py']
test_evaluator = dict(_base_.pw3d_evaluator, accel_mode='filter_first')
