"""Procedural images for augmentation: clutter backgrounds and occluder patches.

Random textures (flat, stripes, checks, blurred noise) inside random OpenCV shapes. They
serve the real-data occlusion augmentation (:class:`RandomVideoOccluders`), the synthetic
backgrounds (:class:`RandomSyntheticBackground`) and the synthetic benchmark's renderer.
All images are RGB uint8.
"""
import cv2
import numpy as np

__all__ = ['PART_COLORS', 'make_background', 'make_occluder']

# The body-part colours of the synthetic benchmark's renderer, also used for clutter so that
# a person cannot be segmented by colour alone: left parts warm, right parts cool, torso
# and head front/back, the torso's flanks (see ``datasets/synthetic/render.py``).
PART_COLORS = np.array([
    (235, 235, 235), (225, 180, 150),                   # torso front (white), face (skin)
    (220, 60, 50), (240, 140, 40), (250, 210, 60),      # left arm: red, orange, yellow
    (40, 80, 220), (40, 190, 220), (90, 220, 120),      # right arm: blue, cyan, green
    (170, 40, 90), (230, 110, 150), (120, 60, 30),      # left leg: crimson, pink, brown
    (60, 40, 160), (120, 120, 240), (30, 90, 60),       # right leg: indigo, lavender, pine
    (110, 110, 120), (60, 40, 25),                      # torso back (grey), hair (dark)
    (215, 90, 200), (150, 200, 40),                     # torso's left (orchid), right (lime)
], dtype=np.float64)


def _random_color(rng, palette, p_palette=.4):
    if rng.uniform() < p_palette:
        base = palette[rng.integers(len(palette))]
        return np.clip(base + rng.normal(0, 20, 3), 0, 255)
    return rng.uniform(0, 255, 3)


def _texture(rng, size, palette):
    """(h, w, 3) float texture: flat, stripes, checks or noise."""
    h, w = size
    a, b = _random_color(rng, palette), _random_color(rng, palette)
    kind = rng.integers(4)
    if kind == 0:
        return np.broadcast_to(a, (h, w, 3)).copy()
    yy, xx = np.mgrid[:h, :w]
    if kind == 1:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0
    elif kind == 2:
        cell = rng.integers(3, 10)
        wave = ((xx // cell + yy // cell) % 2) == 0
    else:
        wave = cv2.GaussianBlur(rng.uniform(0, 1, (h, w)), (0, 0), rng.uniform(1, 3)) > .5
    return np.where(wave[..., None], a, b)


def make_background(rng, size, palette=PART_COLORS, num_shapes=(12, 30)):
    """(H, W, 3) uint8 clutter: a colour gradient under random rectangles, ellipses,
    polygons and lines, some textured, some in body-part colours."""
    h, w = size
    top, bottom = _random_color(rng, palette, 0), _random_color(rng, palette, 0)
    ramp = np.linspace(0, 1, h)[:, None, None]
    canvas = np.ascontiguousarray(np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3)))
    for _ in range(rng.integers(*num_shapes)):
        mask = np.zeros((h, w), np.uint8)
        cx, cy = rng.uniform(-.1, 1.1) * w, rng.uniform(-.1, 1.1) * h
        rx, ry = rng.uniform(.03, .35) * w, rng.uniform(.03, .35) * h
        kind = rng.integers(4)
        if kind == 0:
            cv2.rectangle(mask, (int(cx - rx), int(cy - ry)), (int(cx + rx), int(cy + ry)), 1, -1)
        elif kind == 1:
            cv2.ellipse(mask, (int(cx), int(cy)), (int(rx), int(ry)), rng.uniform(0, 180), 0,
                        360, 1, -1)
        elif kind == 2:
            pts = np.stack([cx + rx * rng.uniform(-1, 1, 5), cy + ry * rng.uniform(-1, 1, 5)], -1)
            cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
        else:
            p0 = (int(cx), int(cy))
            p1 = (int(cx + rng.uniform(-1, 1) * w), int(cy + rng.uniform(-1, 1) * h))
            cv2.line(mask, p0, p1, 1, int(rng.integers(1, 6)))
        x0, y0, bw, bh = cv2.boundingRect(mask)
        if bw and bh:  # texture only the shape's bounding box
            sel = mask[y0:y0 + bh, x0:x0 + bw].astype(bool)
            np.copyto(canvas[y0:y0 + bh, x0:x0 + bw], _texture(rng, (bh, bw), palette),
                      where=sel[..., None])
    return np.clip(canvas, 0, 255).astype(np.uint8)


def make_occluder(rng, radius, palette=PART_COLORS):
    """A random textured shape (rotated rectangle, ellipse or polygon) in a square patch.

    Args:
        rng (np.random.Generator): the occlusion event's stream.
        radius (float): half the patch side, pixels.

    Returns:
        tuple: ``mask`` (S, S) bool and ``texture`` (S, S, 3) uint8, ``S = 2 ceil(radius) + 1``.
    """
    half = int(np.ceil(radius))
    side = 2 * half + 1
    mask = np.zeros((side, side), np.uint8)
    rx, ry = radius * rng.uniform(.4, 1.), radius * rng.uniform(.4, 1.)
    kind = rng.integers(3)
    if kind == 0:
        box = cv2.boxPoints(((half, half), (2 * rx, 2 * ry), rng.uniform(0, 180)))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif kind == 1:
        cv2.ellipse(mask, (half, half), (int(rx), int(ry)), rng.uniform(0, 180), 0, 360, 1, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
        radii = rng.uniform(.5, 1., 7)
        pts = np.stack([half + rx * radii * np.cos(angles), half + ry * radii * np.sin(angles)],
                       -1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    texture = np.clip(_texture(rng, (side, side), palette), 0, 255).astype(np.uint8)
    return mask.astype(bool), texture
