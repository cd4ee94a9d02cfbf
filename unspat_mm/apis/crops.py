"""Person crops made exactly as the test pipeline makes them, and the way back from
crop to image coordinates."""
from typing import Tuple

import numpy as np
import torch

from unspat_mm.models.heads.projection import semi_perspective_projection
from unspat_mm.registry import TRANSFORMS

__all__ = ['CropMaker', 'crop_to_image', 'project_to_image']


class CropMaker:
    """Crops one frame around one box with the config's ``VideoBBoxCrop`` (its code
    path, not a copy: same affine, same interpolation, same padding).

    Args:
        crop_cfg (dict): the test pipeline's ``VideoBBoxCrop`` config without
            augmentation (:func:`~unspat_mm.apis.model_loading.inference_settings`).
    """

    def __init__(self, crop_cfg: dict):
        self.transform = TRANSFORMS.build(dict(crop_cfg))
        self.input_size: Tuple[int, int] = self.transform.input_size  # (w, h)

    def __call__(self, rgb: np.ndarray, box_cxcywh: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB frame, (4,) ``cx, cy, w, h`` box -> the (h, w, 3) crop and
        its (2, 3) affine from image to crop pixels (continuous coordinates)."""
        out = self.transform(dict(imgs=rgb[None], bbox=np.asarray(box_cxcywh)[None]))
        return out['imgs'][0], out['crop_affine'][0].astype(np.float64)


def crop_to_image(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(..., 2) crop pixels -> image pixels through the inverse of a (2, 3) affine."""
    linear, offset = affine[:, :2], affine[:, 2]
    return (np.asarray(points, np.float64) - offset) @ np.linalg.inv(linear).T


def project_to_image(points: np.ndarray, root: np.ndarray, camera: np.ndarray, focal: float,
                     input_size: Tuple[int, int], affine: np.ndarray) -> np.ndarray:
    """Project 3D points (metres, camera axes) into the full image with the head's
    semi-perspective camera.

    Args:
        points (np.ndarray): (K, 3) points, e.g. mesh vertices.
        root (np.ndarray): (3,) the root they are taken relative to (the pelvis).
        camera (np.ndarray): (3,) ``(s, tx, ty)`` from the head.
        focal (float): the head's normalised focal length.
        input_size (tuple): crop ``(w, h)`` in pixels.
        affine (np.ndarray): (2, 3) image -> crop affine of that frame.

    Returns:
        np.ndarray: (K, 2) image pixels.
    """
    rel = torch.as_tensor(np.asarray(points, np.float32) - np.asarray(root, np.float32))[None]
    uv = semi_perspective_projection(rel, torch.as_tensor(camera, dtype=torch.float32)[None],
                                     focal)[0].numpy().astype(np.float64)
    crop_px = (uv + 0.5) * np.asarray(input_size, np.float64)
    return crop_to_image(crop_px, affine)
