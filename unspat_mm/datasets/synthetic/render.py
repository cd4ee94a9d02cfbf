"""Fast CPU rendering of the synthetic benchmark: shaded body parts over clutter.

The body is drawn by z-buffered splatting of the projected mesh vertices: each vertex
covers a small square footprint (sized so that neighbouring vertices overlap) with its
part colour under Lambert shading from vertex normals. Vectorised numpy, with no
per-pixel Python loop. Backgrounds and occluders are random procedural
textures (:mod:`unspat_mm.datasets.transforms.procedural`); part-coloured clutter makes
the person hard to segment by colour alone. All images are RGB uint8, pixel coordinates
as in :mod:`.camera`.
"""
import numpy as np
from einops import rearrange
from scipy import sparse

from ..transforms.procedural import PART_COLORS

__all__ = ['PART_NAMES', 'PART_OF_JOINT', 'PART_COLORS', 'vertex_parts', 'VertexNormals',
           'splat_body', 'paste_occluder']

# SMPL joint -> body part (colour group). Left parts warm, right parts cool, the torso
# and head differ front (shirt print, face) and back (shirt, hair), and the torso's flanks
# have colours of their own, so that the image tells left from right and front from back,
# i.e. the body's orientation. Without the flanks a body turned half left and one turned
# half right show the same white front at 64x64; with them, the flank that turns towards
# the camera shows.
PART_NAMES = ('torso_front', 'face', 'l_upper_arm', 'l_forearm', 'l_hand', 'r_upper_arm',
              'r_forearm', 'r_hand', 'l_thigh', 'l_shin', 'l_foot', 'r_thigh', 'r_shin',
              'r_foot', 'torso_back', 'hair', 'torso_left', 'torso_right')
PART_OF_JOINT = np.array([0, 8, 11, 0, 9, 12, 0, 10, 13, 0, 10, 13, 1, 2, 5, 1, 2, 5, 3, 6,
                          4, 7, 4, 7])
_BACK_OF = {0: 14, 1: 15}  # front part -> back part
_TORSO, _LEFT_FLANK, _RIGHT_FLANK = (PART_NAMES.index(n) for n in ('torso_front', 'torso_left',
                                                                 'torso_right'))


def vertex_parts(weights, rest_normals):
    """Body part of each vertex: that of the joint with the largest skinning weight, the
    torso and head split into front and back by the rest-pose normal, and the torso's
    flanks (normal more sideways than forwards or backwards) parted off as left and right.

    Args:
        weights (np.ndarray): (V, 24) skinning weights.
        rest_normals (np.ndarray): (V, 3) unit normals of the rest mesh (SMPL frame, the
            body faces +z).

    Returns:
        np.ndarray: (V,) part indices into :data:`PART_NAMES`.
    """
    parts = PART_OF_JOINT[np.argmax(weights, axis=1)]
    flank = (parts == _TORSO) & (np.abs(rest_normals[:, 0]) > np.abs(rest_normals[:, 2]))
    back = rest_normals[:, 2] < 0
    for front, back_part in _BACK_OF.items():
        parts = np.where((parts == front) & back, back_part, parts)
    # SMPL's x is the body's left
    return np.where(flank, np.where(rest_normals[:, 0] > 0, _LEFT_FLANK, _RIGHT_FLANK), parts)


class VertexNormals:
    """Area-weighted vertex normals of a fixed triangle mesh, batched over frames.

    Args:
        faces (np.ndarray): (F, 3) vertex indices, consistently oriented (outward).
        num_vertices (int): V.
    """

    def __init__(self, faces, num_vertices):
        faces = np.asarray(faces, dtype=np.int64)
        rows = rearrange(faces, 'f c -> (f c)')
        cols = np.repeat(np.arange(len(faces)), 3)
        self.faces = faces
        self.incidence = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                           shape=(num_vertices, len(faces)))

    def __call__(self, vertices):
        """(L, V, 3) vertices -> (L, V, 3) unit normals."""
        tri = vertices[:, self.faces]  # (L, F, 3, 3)
        face_n = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
        summed = self.incidence @ rearrange(face_n, 'l f c -> f (l c)')
        normals = rearrange(summed, 'v (l c) -> l v c', c=3)
        return normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)


def splat_body(image, points2d, depth, colors, footprint):
    """Draw one frame's body into ``image`` (in place) with a z-buffer.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB, modified in place.
        points2d (np.ndarray): (V, 2) continuous pixel coordinates of the vertices.
        depth (np.ndarray): (V,) camera depth (metres).
        colors (np.ndarray): (V, 3) shaded colours, 0..255.
        footprint (int): side in pixels of the square each vertex covers.

    Returns:
        np.ndarray: (H, W) bool mask of the pixels the body covers.
    """
    height, width = image.shape[:2]
    offsets = np.arange(footprint) - (footprint - 1) // 2
    corner = np.floor(points2d).astype(np.int64)
    px, py = np.broadcast_arrays(corner[:, None, None, 0] + offsets[None, None, :],
                                 corner[:, None, None, 1] + offsets[None, :, None])
    px, py = (rearrange(p, 'v a b -> (v a b)') for p in (px, py))
    vert = np.repeat(np.arange(len(depth)), footprint * footprint)
    inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    pix, vert = (py * width + px)[inside], vert[inside]
    # nearest vertex per pixel: sort by (pixel, depth), keep the first of each pixel
    order = np.lexsort((depth[vert], pix))
    pix, vert = pix[order], vert[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    pix, vert = pix[first], vert[first]
    rows, cols = np.divmod(pix, width)
    image[rows, cols] = np.clip(colors[vert], 0, 255).astype(np.uint8)
    mask = np.zeros((height, width), dtype=bool)
    mask[rows, cols] = True
    return mask


def paste_occluder(image, mask, texture, centre):
    """Paste an occluder patch centred at ``centre`` (pixels) into ``image`` in place; return
    the (H, W) bool mask of the pixels it covers."""
    height, width = image.shape[:2]
    side = mask.shape[0]
    x0 = int(np.floor(centre[0])) - side // 2
    y0 = int(np.floor(centre[1])) - side // 2
    out = np.zeros((height, width), dtype=bool)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if xa >= xb or ya >= yb:
        return out
    sub = mask[ya - y0:yb - y0, xa - x0:xb - x0]
    out[ya:yb, xa:xb] = sub
    image[ya:yb, xa:xb][sub] = texture[ya - y0:yb - y0, xa - x0:xb - x0][sub]
    return out
