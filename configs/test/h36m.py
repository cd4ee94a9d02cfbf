# Test a model trained with configs/unspat_3dpw.py on Human3.6M (Table 1): J14 joints
# regressed from the predicted mesh against the mocap gt_joints14, hip-midpoint root.
#   python tools/test.py configs/test/h36m.py CHECKPOINT
_base_ = ['../unspat_3dpw.py']
test_dataloader = dict(dataset=dict(_delete_=True, **_base_.h36m_test,
                                    num_frames=_base_.num_frames,
                                    pipeline=_base_.test_pipeline))
test_evaluator = _base_.h36m_evaluator
