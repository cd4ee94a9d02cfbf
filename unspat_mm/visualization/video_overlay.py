"""The demo's overlay frame: meshes over the video, track ids, and a side panel with
each person's crop under its uncertainty map (UNSPAT paper Fig. 4 style)."""
import logging
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from unspat_mm.apis.crops import project_to_image
from unspat_mm.datasets.transforms.bbox_crop import to_cv2_affine
from . import pyrender_renderer
from .rasterizer import rasterize_mesh, shade_faces

__all__ = ['VideoOverlay', 'track_color', 'RENDERERS', 'camera_view', 'select_renderer']

RENDERERS = ('auto', 'pyrender', 'numpy')

_PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
            (213, 94, 0), (204, 121, 167))  # Okabe-Ito, RGB


def track_color(track_id: int) -> Tuple[int, int, int]:
    """BGR colour of a track id."""
    r, g, b = _PALETTE[track_id % len(_PALETTE)]
    return b, g, r


def _text(img, text, org, color, scale):
    thickness = max(1, int(round(scale * 2)))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2,
                cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def camera_view(inst: dict, focal: float, input_size: Tuple[int, int]
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The head's semi-perspective camera of one person as a pinhole in the full image.

    ``u = s (x + tx) / (1 + s z / focal)`` (crop units) is a pinhole of focal length
    ``focal`` looking at the root from depth ``focal / s``, so the mesh moves to
    ``vertices - root + (tx, ty, focal / s)``, and the crop's pixels, then the inverse of
    the crop affine, give the image intrinsics: the same pixels as
    :func:`unspat_mm.apis.crops.project_to_image`, with depths a GL renderer can use.

    Args:
        inst (dict): ``vertices`` (V, 3) and ``joints24`` (24, 3) metres, camera axes;
            ``camera`` ``(s, tx, ty)``; ``crop_affine`` (2, 3) image -> crop.
        focal (float): the head's normalised focal length.
        input_size (tuple): crop ``(w, h)`` in pixels.

    Returns:
        tuple: (V, 3) vertices in that pinhole's axes (metres; z > 0 in front) and its
        (3, 3) intrinsics, camera -> homogeneous image pixels.
    """
    s, tx, ty = (float(v) for v in inst['camera'])
    root = np.asarray(inst['joints24'], np.float64)[0]
    verts = np.asarray(inst['vertices'], np.float64) - root + (tx, ty, focal / s)
    w, h = input_size
    crop_k = np.array([[focal * w, 0, w / 2], [0, focal * h, h / 2], [0, 0, 1]])
    affine = np.asarray(inst['crop_affine'], np.float64)
    inv = np.linalg.inv(affine[:, :2])
    to_image = np.eye(3)
    to_image[:2, :2], to_image[:2, 2] = inv, -inv @ affine[:, 2]
    return verts, to_image @ crop_k


def select_renderer(renderer: str = 'auto'):
    """``(name, PyrenderMeshRenderer or None)`` for ``renderer``, and one log line that
    says which and why.

    ``'auto'``: pyrender when it imports and an offscreen GL platform (EGL, OSMesa)
    makes a context, else the numpy rasteriser. ``'pyrender'``: that, or an error.

    Raises:
        ValueError: an unknown name.
        RuntimeError: ``'pyrender'`` requested but unavailable (says what is missing).
    """
    if renderer not in RENDERERS:
        raise ValueError(f'renderer must be one of {", ".join(RENDERERS)}; got {renderer!r}')
    if renderer == 'numpy':
        print_log('Overlay renderer: numpy z-buffer rasteriser (requested).',
                  logger='current', level=logging.INFO)
        return 'numpy', None
    try:
        gl = pyrender_renderer.PyrenderMeshRenderer()
    except pyrender_renderer.RendererUnavailable as err:
        if renderer == 'pyrender':
            raise RuntimeError(f"renderer='pyrender' is unavailable: {err}. To use pyrender, "
                               f'{pyrender_renderer.INSTALL_HINT}.') from err
        print_log(f'Overlay renderer: numpy z-buffer rasteriser, since pyrender is '
                  f'unavailable ({err}); for pyrender, {pyrender_renderer.INSTALL_HINT}.',
                  logger='current', level=logging.WARNING)
        return 'numpy', None
    print_log(f'Overlay renderer: pyrender, OpenGL offscreen on the {gl.platform} platform.',
              logger='current', level=logging.INFO)
    return 'pyrender', gl


class VideoOverlay:
    """Draw one output frame.

    Layout: the input frame with every person's mesh (lit from the camera, in the
    track's colour, blended; larger boxes over smaller ones), box and ``id N``; to its
    right a panel with one tile per person: the crop the model saw, overlaid with the
    uncertainty U of that frame (jet colour map; red = features the estimator flags as
    unreliable), and beneath it the T maps of the window. A red banner says when the
    body model is the stand-in.

    Args:
        faces (np.ndarray): (F, 3) mesh faces.
        focal (float): the head's normalised focal length.
        input_size (tuple): crop ``(w, h)`` in pixels.
        banner (str, optional): warning written across the top of every frame.
        alpha (float): mesh opacity. Defaults to 0.75.
        renderer (str): ``'auto'`` (pyrender offscreen where it works, else numpy),
            ``'pyrender'`` (smooth-shaded, anti-aliased; an error if unavailable) or
            ``'numpy'`` (the project's flat-shaded z-buffer rasteriser, no GL).
            Defaults to ``'auto'``.
    """

    def __init__(self, faces: np.ndarray, focal: float, input_size: Tuple[int, int],
                 banner: Optional[str] = None, alpha: float = 0.75, renderer: str = 'auto'):
        self.faces = np.asarray(faces, np.int64)
        self.focal, self.input_size = focal, tuple(input_size)
        self.banner, self.alpha = banner, alpha
        self.requested = renderer
        self.renderer, self._gl = select_renderer(renderer)

    def _render_gl(self, canvas: np.ndarray, inst: dict) -> bool:
        """pyrender's mesh blended into ``canvas``; False where it cannot draw (no GL
        renderer; a camera scale <= 0 puts the root at or behind the pinhole)."""
        if self._gl is None or float(inst['camera'][0]) <= 0:
            return False
        verts, intrinsics = camera_view(inst, self.focal, self.input_size)
        b, g, r = track_color(int(inst['track_id']))
        try:
            rgba, _ = self._gl.render([(verts, self.faces, (r, g, b))], intrinsics,
                                      canvas.shape[:2])
        except Exception as err:  # noqa: BLE001  (GL stacks raise many kinds)
            if self.requested == 'pyrender':
                raise RuntimeError(f'pyrender failed to render: {type(err).__name__}: {err}; '
                                   "use renderer='numpy' (demo: --renderer numpy)") from err
            print_log(f'Overlay renderer: pyrender failed ({type(err).__name__}: {err}); '
                      'drawing the rest with the numpy rasteriser.', logger='current',
                      level=logging.WARNING)
            self.renderer, self._gl = 'numpy', None
            return False
        covered = rgba[..., 3] > 0
        if covered.any():
            # pyrender's anti-aliased RGBA is premultiplied by its coverage a
            coverage = self.alpha * rgba[covered, 3:].astype(np.float64) / 255
            layer = self.alpha * rgba[covered, 2::-1].astype(np.float64)  # RGB -> BGR
            canvas[covered] = np.clip((1 - coverage) * canvas[covered] + layer, 0,
                                      255).astype(np.uint8)
        return True

    def render_mesh(self, canvas: np.ndarray, inst: dict) -> None:
        """Blend one person's mesh into ``canvas`` (BGR, in place)."""
        if self._render_gl(canvas, inst):
            return
        verts = np.asarray(inst['vertices'], np.float64)
        root = np.asarray(inst['joints24'], np.float64)[0]
        pts = project_to_image(verts, root, inst['camera'], self.focal, self.input_size,
                               inst['crop_affine'])
        zbuf, face_ids = rasterize_mesh(pts, verts[:, 2], self.faces, canvas.shape[:2])
        covered = face_ids >= 0
        if not covered.any():
            return
        colors = shade_faces(verts, self.faces, track_color(int(inst['track_id'])))
        layer = colors[face_ids[covered]]
        canvas[covered] = np.clip((1 - self.alpha) * canvas[covered] + self.alpha * layer, 0,
                                  255).astype(np.uint8)

    def tile(self, bgr: np.ndarray, inst: dict, side: int) -> np.ndarray:
        """(side + strip, side, 3) tile: the crop under U, the window's maps below."""
        crop = cv2.warpAffine(bgr, to_cv2_affine(inst['crop_affine']), self.input_size,
                              flags=cv2.INTER_LINEAR)
        crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR)
        maps = np.asarray(inst['uncertainty_map'], np.float64)
        middle = maps[len(maps) // 2]
        heat = cv2.applyColorMap(np.uint8(np.clip(middle, 0, 1) * 255), cv2.COLORMAP_JET)
        heat = cv2.resize(heat, (side, side), interpolation=cv2.INTER_NEAREST)
        top = cv2.addWeighted(crop, 0.55, heat, 0.45, 0)
        cell = max(1, side // len(maps))
        strip = np.zeros((cell, side, 3), np.uint8)
        for t, m in enumerate(maps[:side // cell]):
            small = cv2.applyColorMap(np.uint8(np.clip(m, 0, 1) * 255), cv2.COLORMAP_JET)
            strip[:, t * cell:(t + 1) * cell] = cv2.resize(small, (cell, cell),
                                                           interpolation=cv2.INTER_NEAREST)
        out = np.concatenate([top, strip])
        color = track_color(int(inst['track_id']))
        cv2.rectangle(out, (0, 0), (side - 1, side - 1), color, 2)
        _text(out, f'id {inst["track_id"]} U={inst["uncertainty"]:.2f}', (4, 14), color,
              max(0.35, side / 400))
        return out

    def panel(self, bgr: np.ndarray, instances: Sequence[dict], height: int) -> np.ndarray:
        num_maps = len(instances[0]['uncertainty_map']) if instances else 1
        # a tile (crop + a strip of T maps) must fit the frame's height
        side = min(int(np.clip(height // 2, 96, 320)), height * num_maps // (num_maps + 1))
        panel = np.full((height, side, 3), 32, np.uint8)
        y = 0
        for inst in instances:
            tile = self.tile(bgr, inst, side)
            if y + tile.shape[0] > height:
                break
            panel[y:y + tile.shape[0]] = tile
            y += tile.shape[0]
        if not instances:
            _text(panel, 'no person', (4, 16), (200, 200, 200), 0.4)
        return panel

    def __call__(self, bgr: np.ndarray, instances: List[dict]) -> np.ndarray:
        """(H, W, 3) BGR frame and its instances -> (H, W + panel, 3) BGR overlay."""
        canvas = bgr.copy()
        scale = max(0.35, canvas.shape[0] / 900)
        # far (small) people first, so that nearer meshes cover them
        for inst in sorted(instances, key=lambda i: np.prod(np.ptp(
                np.reshape(i['bbox'], (2, 2)), axis=0))):
            self.render_mesh(canvas, inst)
        for inst in instances:
            color = track_color(int(inst['track_id']))
            x1, y1, x2, y2 = (int(round(v)) for v in inst['bbox'])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, max(1, int(2 * scale)))
            _text(canvas, f'id {inst["track_id"]}', (x1 + 2, max(y1 - 4, 12)), color, scale)
        if self.banner:
            bar = max(14, int(28 * scale))
            canvas[:bar] = (canvas[:bar] * 0.15 + np.array([0, 0, 200]) * 0.85).astype(np.uint8)
            _text(canvas, self.banner.split(':')[0], (4, bar - 5), (255, 255, 255), scale * 0.8)
        return np.concatenate([canvas, self.panel(bgr, instances, canvas.shape[0])], axis=1)
