"""The paper's training and evaluation datasets (UNSPAT §4, following TCMR), as converted
``unspat-mm-video-v1`` files read by :class:`VideoAnnotationDataset`.

Which labels each carries (a kind not carried is presented as invalid whatever the file
holds; a kind carried is as valid as the file's flags):

==================  =====  =====================  ==================  =======================
dataset             2D     3D joints (29)         SMPL theta/beta     evaluation
==================  =====  =====================  ==================  =======================
3DPW                yes    yes (from SMPL)        yes                 j14 from the GT mesh,
                                                                      root hip midpoint
Human3.6M           yes    yes (SMPL-compatible   if the file has it  j14 from ``gt_joints14``
                           joints only)                               (mocap), hip midpoint
MPI-INF-3DHP        yes    yes (as Human3.6M)     if the file has it  h36m17 from
                                                                      ``gt_joints17``, pelvis
PennAction          yes    no                     no                  --
PoseTrack           yes    no                     no                  --
InstaVariety        yes    no                     no                  --
==================  =====  =====================  ==================  =======================
"""
from unspat_mm.registry import DATASETS
from .video_annotation_dataset import VideoAnnotationDataset

__all__ = ['PW3DDataset', 'H36MDataset', 'MPIINF3DHPDataset', 'PennActionDataset',
           'PoseTrackDataset', 'InstaVarietyDataset']

_HUMANDATA = 'tools/dataset_converters/humandata.py'
_NO_EVAL = dict(eval_joint_set=None, eval_root=None, eval_gt=None)


@DATASETS.register_module()
class PW3DDataset(VideoAnnotationDataset):
    """3DPW (von Marcard et al., ECCV 2018): in-the-wild video with SMPL fits; one track
    per actor (``sequence_id = '<sequence>/actor<k>'``). ``valid`` is ``campose_valid``:
    train with ``filter_cfg=dict(valid_only=True)``; the metric skips invalid frames.
    Evaluated on J14 joints regressed from the neutral-SMPL ground-truth mesh."""
    METAINFO = dict(dataset_name='3dpw', eval_joint_set='j14', eval_root='hip_mid',
                    eval_gt='mesh')
    CONVERTER = 'tools/dataset_converters/pw3d.py'


@DATASETS.register_module()
class H36MDataset(VideoAnnotationDataset):
    """Human3.6M: studio video with marker-based 3D joints. Only the 3D joints whose
    definition matches SMPL's are valid (the converter decides; its pelvis and hips are
    not SMPL's); SMPL labels only where the file has them. Evaluated (TCMR's protocol) on
    the mocap J14 joints ``gt_joints14`` with the hip midpoint as root; a test config
    should set ``labels=('keypoints2d', 'keypoints3d')`` so that no SMPL fit replaces
    them."""
    METAINFO = dict(dataset_name='h36m', eval_joint_set='j14', eval_root='hip_mid',
                    eval_gt='gt_joints14')
    CONVERTER = _HUMANDATA


@DATASETS.register_module()
class MPIINF3DHPDataset(VideoAnnotationDataset):
    """MPI-INF-3DHP: multi-view studio / outdoor video with markerless 3D joints (3D
    validity as Human3.6M). Its test set is evaluated on 17 joints in Human3.6M order
    (``gt_joints17``), root = that skeleton's pelvis, ``valid`` frames only; as for
    Human3.6M, a test config drops SMPL labels (``labels``) so that no fit replaces them."""
    METAINFO = dict(dataset_name='mpi_inf_3dhp', eval_joint_set='h36m17', eval_root='pelvis',
                    eval_gt='gt_joints17')
    CONVERTER = _HUMANDATA


@DATASETS.register_module()
class PennActionDataset(VideoAnnotationDataset):
    """Penn Action: sports video with 2D joints only."""
    METAINFO = dict(dataset_name='pennaction', **_NO_EVAL)
    LABELS = ('keypoints2d', )
    CONVERTER = _HUMANDATA


@DATASETS.register_module()
class PoseTrackDataset(VideoAnnotationDataset):
    """PoseTrack: multi-person video with 2D joint tracks only."""
    METAINFO = dict(dataset_name='posetrack', **_NO_EVAL)
    LABELS = ('keypoints2d', )
    CONVERTER = _HUMANDATA


@DATASETS.register_module()
class InstaVarietyDataset(VideoAnnotationDataset):
    """InstaVariety (Kanazawa et al., CVPR 2019): internet video with 2D pseudo-ground-
    truth joints (OpenPose) only."""
    METAINFO = dict(dataset_name='insta_variety', **_NO_EVAL)
    LABELS = ('keypoints2d', )
    CONVERTER = _HUMANDATA
