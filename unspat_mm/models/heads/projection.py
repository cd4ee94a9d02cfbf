"""The semi-perspective camera of the 2D keypoint loss (paper eq. 8)."""
from torch import Tensor


def semi_perspective_projection(points: Tensor, camera: Tensor, focal: float) -> Tensor:
    """Project root-relative 3D points into the normalised crop.

    A pinhole camera with normalised focal length ``focal`` (focal length in
    pixels / crop size) looks at the root from depth ``focal / s``; the points
    are offset by ``(tx, ty)`` in the image plane:

        u = s (x + tx) / (1 + s z / focal),   v = s (y + ty) / (1 + s z / focal)

    which tends to the weak-perspective ``s (x + tx)`` as ``focal`` grows.

    Args:
        points (Tensor): (B, K, 3) root-relative points, x right, y down, z away from
            the camera, in the unit ``s`` expects (metres here).
        camera (Tensor): (B, 3) ``(s, tx, ty)``; ``s`` > 0 in crop units per metre.
        focal (float): normalised focal length (e.g. 1000 px / 256 px).

    Returns:
        Tensor: (B, K, 2) points in crop coordinates normalised to [-0.5, 0.5]
        (the crop's centre is 0).
    """
    if points.dim() != 3 or points.shape[-1] != 3 or tuple(camera.shape) != (points.shape[0], 3):
        raise ValueError('semi_perspective_projection needs points (B, K, 3) and camera (B, 3), '
                         f'got {tuple(points.shape)} and {tuple(camera.shape)}.')
    scale = camera[:, None, :1]
    shift = camera[:, None, 1:]
    depth_ratio = 1.0 + scale * points[..., 2:] / focal
    return scale * (points[..., :2] + shift) / depth_ratio.clamp(min=1e-3)
