"""HybrIK's conventions, as its ResNet-34 SMPL-with-camera model uses them.

Facts from HybrIK's public code (``hybrik/models/simple3dposeSMPLWithCam.py``,
``Simple3DPoseBaseSMPLCam``, and its config
``configs/256x192_adam_lr1e-3-res34_smpl_3d_cam_2x_mix.yaml``), which
``IKMeshHead(convention='hybrik')`` follows so that HybrIK's weights keep their meaning:

- uvd heatmaps: 29 x 64 depth bins x 64 x 64 from a 256x256 crop, softmax over each
  keypoint's 64^3 cells, soft-argmax with cell i of n at ``i / n - 0.5``; u, v are
  image-aligned crop coordinates (the crop's centre is 0, its width 1) and d the depth
  relative to the root in units of the depth factor, 2.2 m (``BBOX_3D_SHAPE`` 2200 mm).
- The pooled feature goes through ``fc1`` (-> 1024), dropout 0.5, ``fc2`` (1024 -> 1024),
  dropout 0.5, with no activation between them; then linear ``decshape`` (10, added to
  the ``init_shape`` buffer, HybrIK's Human3.6M mean shape), ``decphi`` (23 x (cos, sin)),
  ``deccam`` (3, added to ``init_cam`` = (0.9, 0, 0)) and ``decsigma`` (29, through a
  sigmoid).
- Camera (s, tx, ty) with focal length 1000 px on a 256 px crop: the root lies at depth
  ``1000 / (256 s)`` metres, and a root-relative point (x, y, z) in metres projects to
  ``u = (1000 / 256) (x + tx) / (z + 1000 / (256 s))`` (v likewise) - the semi-perspective
  camera of :func:`semi_perspective_projection` with ``focal = 1000 / 256``.
  :func:`uvd_to_camera` inverts it for the uvd keypoints; HybrIK then subtracts the root
  and hands the IK root-relative metres.
- Input crops are RGB, normalised with ImageNet's statistics in BGR order (HybrIK
  subtracts 0.406 / divides by 0.225 on its first, red, channel): mean
  :data:`HYBRIK_PIXEL_MEAN`, std :data:`HYBRIK_PIXEL_STD` on 0-255 pixels.
"""
import torch
from torch import Tensor

HYBRIK_FOCAL_PX = 1000.0
HYBRIK_INPUT_SIZE = 256
HYBRIK_FOCAL = HYBRIK_FOCAL_PX / HYBRIK_INPUT_SIZE  # normalised focal length
HYBRIK_DEPTH_FACTOR = 2.2  # metres spanned by d in [-0.5, 0.5]
HYBRIK_INIT_CAM = (0.9, 0.0, 0.0)
HYBRIK_HIDDEN = 1024
HYBRIK_PIXEL_MEAN = (0.406 * 255, 0.457 * 255, 0.480 * 255)  # (R, G, B) of 0-255 pixels
HYBRIK_PIXEL_STD = (0.225 * 255, 0.224 * 255, 0.229 * 255)

# HybrIK module -> IKMeshHead(convention='hybrik') module. The deconvolution stacks index
# alike (ConvTranspose2d, BatchNorm2d, ReLU) x 3, so their entries map index for index.
HEAD_MODULES = {
    'deconv_layers': 'deconv',
    'final_layer': 'final_conv',
    'fc1': 'mlp.0',
    'fc2': 'mlp.2',
    'decshape': 'beta_fc',
    'decphi': 'twist_fc',
    'deccam': 'camera_fc',
    'decsigma': 'sigma_fc',
}
HEAD_BUFFERS = ('init_shape', 'init_cam')  # same names on both sides


def root_depth(camera: Tensor, focal: float) -> Tensor:
    """(B, 1, 1) distance in metres from the camera to the root: ``focal / s``.

    Args:
        camera (Tensor): (B, 3) ``(s, tx, ty)``, s in crop units per metre.
        focal (float): normalised focal length (HybrIK: 1000 / 256).
    """
    # HybrIK: 1000 / (256 s + 1e-9); the guard only matters at s ~ 0
    return focal / (camera[:, None, :1] + 1e-9 / HYBRIK_INPUT_SIZE)


def uvd_to_camera(uvd: Tensor, camera: Tensor, focal: float, depth_factor: float) -> Tensor:
    """Back-project HybrIK's uvd keypoints with the predicted camera, as HybrIK does.

    ``z = d * depth_factor``, ``(x, y) = (u, v) (z + focal / s) / focal - (tx, ty)``:
    metres, in camera axes (x right, y down, z away from the camera), with the camera
    at ``(-tx, -ty, -focal / s)``; the points are not yet root-centred (the root sits at
    the origin only when the heatmaps and the camera agree).

    Args:
        uvd (Tensor): (B, K, 3) ``(u, v, d)`` in [-0.5, 0.5]: crop coordinates and depth
            relative to the root in units of ``depth_factor``.
        camera (Tensor): (B, 3) ``(s, tx, ty)``.
        focal (float): normalised focal length (focal length in px / crop size in px).
        depth_factor (float): metres per unit of d (HybrIK: 2.2).

    Returns:
        Tensor: (B, K, 3) points in metres.
    """
    if uvd.dim() != 3 or uvd.shape[-1] != 3 or tuple(camera.shape) != (uvd.shape[0], 3):
        raise ValueError('uvd_to_camera needs uvd (B, K, 3) and camera (B, 3), got '
                         f'{tuple(uvd.shape)} and {tuple(camera.shape)}.')
    z = uvd[..., 2:] * depth_factor
    xy = uvd[..., :2] / focal * (z + root_depth(camera, focal)) - camera[:, None, 1:]
    return torch.cat([xy, z], dim=-1)
