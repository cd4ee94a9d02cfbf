# Test a model trained with configs/unspat_3dpw.py on the MPI-INF-3DHP test set (Table 1):
# 17 joints in Human3.6M order regressed from the predicted mesh against gt_joints17,
# pelvis root, valid frames only, TCMR's Accel for 3DHP (second differences over all frames
# of a sequence, averaged at the valid ones; 3DPW instead drops invalid frames first).
#   python tools/test.py configs/test/mpi_inf_3dhp.py CHECKPOINT
_base_ = ['../unspat_3dpw.py']
test_dataloader = dict(dataset=dict(_delete_=True, **_base_.mpi_inf_3dhp_test,
                                    num_frames=_base_.num_frames,
                                    pipeline=_base_.test_pipeline))
test_evaluator = dict(_base_.mpi_inf_3dhp_evaluator, accel_mode='valid_centre')
