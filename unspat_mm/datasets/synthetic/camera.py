"""Pinhole camera, bounding boxes and the tracker-like box jitter of the synthetic benchmark.

Camera frame: x right, y down, z forward (metres). Pixel coordinates are continuous with
the image spanning ``[0, W] x [0, H]``: pixel ``(i, j)`` (column, row) covers
``[i, i + 1) x [j, j + 1)``, its centre is ``(i + 0.5, j + 0.5)``. The principal point is
the image centre ``(W / 2, H / 2)``.
"""
import numpy as np

__all__ = ['SMPL_TO_CAMERA', 'project', 'square_bbox', 'smooth_noise', 'jitter_bboxes']

# SMPL's frame (y up, the body faces +z) seen from a camera that looks at the body's front:
# a half-turn about x. A body with identity global orientation faces the camera.
SMPL_TO_CAMERA = np.diag([1., -1., -1.])


def project(points, focal, principal):
    """Perspective projection.

    Args:
        points (np.ndarray): (..., P, 3) camera-frame points, metres, z > 0.
        focal (np.ndarray | float): (...,) focal length in pixels (broadcast over P).
        principal (np.ndarray): (..., 2) principal point in pixels.

    Returns:
        np.ndarray: (..., P, 2) continuous pixel coordinates (see module docstring).
    """
    points = np.asarray(points, dtype=np.float64)
    if (points[..., 2] <= 0).any():
        raise ValueError('project: every point must be in front of the camera (z > 0)')
    focal = np.asarray(focal, dtype=np.float64)[..., None, None]
    return focal * points[..., :2] / points[..., 2:] + np.asarray(principal)[..., None, :]


def square_bbox(points2d, scale=1.2):
    """(..., P, 2) pixel points -> (..., 4) square boxes ``(cx, cy, w, h)`` around them, the
    side ``scale`` times the longer side of their extent."""
    lo, hi = points2d.min(-2), points2d.max(-2)
    centre = (lo + hi) / 2
    side = (hi - lo).max(-1) * scale
    return np.concatenate([centre, side[..., None], side[..., None]], axis=-1)


def smooth_noise(rng, num_frames, fps, amplitude, num_waves=3, max_freq=.8):
    """(L,) smooth random process: a sum of ``num_waves`` sinusoids of random frequency
    (<= ``max_freq`` Hz) and phase whose standard deviation is ``amplitude``."""
    t = np.arange(num_frames) / fps
    freq = rng.uniform(.05, max_freq, num_waves)
    phase = rng.uniform(0, 2 * np.pi, num_waves)
    weights = rng.uniform(.5, 1., num_waves)
    weights *= amplitude * np.sqrt(2) / np.linalg.norm(weights)
    return (weights[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])).sum(0)


def jitter_bboxes(rng, bboxes, fps, trans_smooth=.06, trans_noise=.02, scale_smooth=.08,
                  scale_noise=.03):
    """Tracker-like misalignment: shift and rescale each box by a smooth random process plus
    per-frame noise.

    Args:
        rng (np.random.Generator): the sequence's jitter stream.
        bboxes (np.ndarray): (L, 4) ``(cx, cy, w, h)`` pixels.
        fps (float): frames per second of the sequence.
        trans_smooth, trans_noise (float): std of the smooth / per-frame shift, as a
            fraction of the box side. Defaults to 0.06 and 0.02.
        scale_smooth, scale_noise (float): std of the smooth / per-frame log-scale.
            Defaults to 0.08 and 0.03.

    Returns:
        np.ndarray: (L, 4) jittered boxes.
    """
    num = len(bboxes)
    side = bboxes[:, 2:].max(-1)
    shift = np.stack([smooth_noise(rng, num, fps, trans_smooth) for _ in range(2)], -1)
    shift += rng.normal(0, trans_noise, (num, 2))
    log_scale = smooth_noise(rng, num, fps, scale_smooth) + rng.normal(0, scale_noise, num)
    out = bboxes.astype(np.float64).copy()
    out[:, :2] += shift * side[:, None]
    out[:, 2:] *= np.exp(log_scale)[:, None]
    return out
