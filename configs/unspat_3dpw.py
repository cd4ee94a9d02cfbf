# UNSPAT on 3DPW (paper Table 1 protocol): the model and schedule of the paper.
# The data part (3DPW + Human3.6M + MPI-INF-3DHP + PennAction + InstaVariety +
# PoseTrack mixture) is added by configs/_base_/datasets/ once the real-dataset
# loaders land; see README "Data".
_base_ = [
    '_base_/default_runtime.py',
    '_base_/models/unspat_r34.py',
    '_base_/schedules/adam_90e.py',
]
