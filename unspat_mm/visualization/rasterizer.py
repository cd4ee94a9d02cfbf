"""A z-buffer triangle rasteriser in numpy (no OpenGL needed)."""
from typing import Tuple

import numpy as np

__all__ = ['rasterize_mesh', 'shade_faces']

_MAX_CANDIDATES = 1 << 21  # pixel candidates processed at once (memory bound)


def _bucket_candidates(tri, zs, x0, y0, side, width, height):
    """Pixel candidates of faces whose box fits in ``side`` x ``side`` pixels."""
    oy, ox = np.divmod(np.arange(side * side), side)
    px = x0[:, None] + ox[None]
    py = y0[:, None] + oy[None]
    cx, cy = px + 0.5, py + 0.5  # pixel centres, continuous coordinates
    (ax, ay), (bx, by), (qx, qy) = (tri[:, k, :].T[:, :, None] for k in range(3))
    area = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
    w0 = ((bx - cx) * (qy - cy) - (by - cy) * (qx - cx)) / area
    w1 = ((qx - cx) * (ay - cy) - (qy - cy) * (ax - cx)) / area
    w2 = 1 - w0 - w1
    eps = -1e-7
    inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps) & (px < width) & (py < height)
    depth = w0 * zs[:, 0, None] + w1 * zs[:, 1, None] + w2 * zs[:, 2, None]
    return py[inside] * width + px[inside], depth[inside], inside


def rasterize_mesh(points2d: np.ndarray, depth: np.ndarray, faces: np.ndarray,
                   image_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Visible face per pixel.

    Args:
        points2d (np.ndarray): (V, 2) vertex positions in continuous pixel coordinates
            (pixel (i, j) spans [i, i + 1) x [j, j + 1)).
        depth (np.ndarray): (V,) vertex depth, larger = farther.
        faces (np.ndarray): (F, 3) vertex indices.
        image_size (tuple): ``(height, width)``.

    Returns:
        tuple: (H, W) float depth buffer (``inf`` where empty) and (H, W) int face index
        (-1 where empty). Pixel centres inside a triangle are covered; depth is
        interpolated linearly in screen space.
    """
    height, width = image_size
    zbuf = np.full(height * width, np.inf)
    face_ids = np.full(height * width, -1, np.int64)
    tri = np.asarray(points2d, np.float64)[faces]
    zs = np.asarray(depth, np.float64)[faces]
    lo = np.ceil(tri.min(1) - 0.5).astype(np.int64)
    hi = np.floor(tri.max(1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    area = ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
            - (tri[:, 1, 1] - tri[:, 0, 1]) * (tri[:, 2, 0] - tri[:, 0, 0]))
    ok = (hi >= lo).all(1) & (np.abs(area) > 1e-12) & np.isfinite(tri).all((1, 2))
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return zbuf.reshape(height, width), face_ids.reshape(height, width)
    extent = (hi[idx] - lo[idx] + 1).max(1)
    pix_all, dep_all, face_all = [], [], []
    side = 1
    while len(idx):
        sel = extent <= side
        if sel.any():
            chosen = idx[sel]
            step = max(1, _MAX_CANDIDATES // (side * side))
            for start in range(0, len(chosen), step):
                part = chosen[start:start + step]
                pix, dep, inside = _bucket_candidates(tri[part], zs[part], lo[part, 0],
                                                      lo[part, 1], side, width, height)
                pix_all.append(pix)
                dep_all.append(dep)
                face_all.append(np.broadcast_to(part[:, None], inside.shape)[inside])
            idx, extent = idx[~sel], extent[~sel]
        side *= 2
    pix, dep, face = (np.concatenate(a) for a in (pix_all, dep_all, face_all))
    if len(pix):
        order = np.lexsort((dep, pix))
        pix, dep, face = pix[order], dep[order], face[order]
        first = np.r_[True, pix[1:] != pix[:-1]]
        zbuf[pix[first]] = dep[first]
        face_ids[pix[first]] = face[first]
    return zbuf.reshape(height, width), face_ids.reshape(height, width)


def shade_faces(vertices: np.ndarray, faces: np.ndarray, color: Tuple[float, float, float],
                ambient: float = 0.35) -> np.ndarray:
    """(F, 3) colours of flat-shaded faces lit from the camera (camera axes: z away).

    Args:
        vertices (np.ndarray): (V, 3) positions, metres, camera axes.
        faces (np.ndarray): (F, 3) vertex indices.
        color (tuple): base colour (3 values in [0, 255], any channel order).
        ambient (float): light that reaches faces seen edge-on.
    """
    tri = np.asarray(vertices, np.float64)[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    light = np.abs(normal[:, 2])
    return np.clip((ambient + (1 - ambient) * light)[:, None] * np.asarray(color), 0, 255)
