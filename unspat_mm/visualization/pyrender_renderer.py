"""Offscreen OpenGL mesh rendering with pyrender (EGL or OSMesa, no display needed).

The platform is chosen before PyOpenGL is first imported, since PyOpenGL binds to one
platform for the life of the process: a ``PYOPENGL_PLATFORM`` the user set is used as it
is, otherwise EGL, then OSMesa. Each candidate is tried in a child process first, because
a broken GL stack can crash the process that initialises it (EGL drivers are reported to,
with pyrender's own ``PyOpenGL==3.1.0`` pin), and a demo should fall back, not die.
"""
import ctypes.util
import importlib.util
import os
import subprocess
import sys
import threading
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ['PyrenderMeshRenderer', 'RendererUnavailable', 'load_pyrender', 'PLATFORMS',
           'INSTALL_HINT']

PLATFORMS = ('egl', 'osmesa')
_LIBRARIES = dict(egl='EGL', osmesa='OSMesa')  # what each platform loads (ctypes names)
# the modules pyrender imports at import time (pyrender's metadata lists more)
_MODULES = (('pyrender', 'pyrender'), ('OpenGL', 'PyOpenGL'), ('trimesh', 'trimesh'),
            ('freetype', 'freetype-py'), ('pyglet', 'pyglet'), ('imageio', 'imageio'),
            ('networkx', 'networkx'), ('six', 'six'))
INSTALL_HINT = (
    'install it with `pip install -r requirements/inference.txt` then `pip install --no-deps '
    '-r requirements/render.txt` (pyrender without its PyOpenGL==3.1.0 pin, which cannot '
    'render on OSMesa), and an offscreen GL library: Mesa\'s EGL (Debian: apt-get install libegl1 '
    'libgl1-mesa-dri) or OSMesa (apt-get install libosmesa6, then PYOPENGL_PLATFORM=osmesa); '
    "or draw with renderer='numpy'")
_PROBE = ('import pyrender\n'
          'r = pyrender.OffscreenRenderer(8, 8)\n'
          's = pyrender.Scene()\n'
          's.add(pyrender.PerspectiveCamera(yfov=1.0))\n'
          'r.render(s)\n'
          'r.delete()\n')


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or sys.modules[module] = None
        return False


def _tiny_render(pyrender) -> None:
    """What :data:`_PROBE` does, in this process, on the shared context (kept)."""
    scene = pyrender.Scene()
    scene.add(pyrender.PerspectiveCamera(yfov=1.0))
    with _GL_LOCK:
        _offscreen(pyrender, 8, 8).render(scene)


class RendererUnavailable(RuntimeError):
    """pyrender or an offscreen GL platform cannot be used; the message says why."""


_loaded = None  # (pyrender module, platform) once loaded; the reason string if it failed
_OFFSCREEN = None  # the shared pyrender.OffscreenRenderer (see _offscreen)
_GL_LOCK = threading.Lock()  # one thread at a time makes the context current


def _probe(platform: str, timeout: float = 20.) -> Optional[str]:
    """None if pyrender renders with ``platform`` in a child process, else why not."""
    env = dict(os.environ, PYOPENGL_PLATFORM=platform)
    try:
        proc = subprocess.run([sys.executable, '-c', _PROBE], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f'{platform}: no context within {timeout:.0f} s'
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else f'exit code {proc.returncode}'
    if proc.returncode < 0:
        last = f'crashed with signal {-proc.returncode} ({last})'
    library = _LIBRARIES.get(platform)
    if library and ctypes.util.find_library(library) is None:
        last += f' (the system library lib{library} is not installed)'
    return f'{platform}: {last}'


def load_pyrender() -> Tuple[object, str]:
    """``(pyrender module, platform name)``, importing pyrender on a working platform.

    Sets ``PYOPENGL_PLATFORM`` in this process to the platform found (PyOpenGL reads it
    at its first import). The outcome is cached: later calls cost nothing.

    Raises:
        RendererUnavailable: a package is missing or no platform can make a context.
    """
    global _loaded
    if isinstance(_loaded, tuple):
        return _loaded
    if isinstance(_loaded, str):
        raise RendererUnavailable(_loaded)
    missing = [pip for module, pip in _MODULES if not _importable(module)]
    if missing:
        _loaded = f'missing Python package(s) {", ".join(missing)}'
        raise RendererUnavailable(_loaded)
    user = os.environ.get('PYOPENGL_PLATFORM')
    probed = 'OpenGL' not in sys.modules
    if probed:
        candidates = [user] if user else list(PLATFORMS)
        reasons = []
        for platform in candidates:
            reason = _probe(platform)
            if reason is None:
                break
            reasons.append(reason)
        else:
            _loaded = ('no offscreen OpenGL platform works (tried '
                       f'{", ".join(candidates)}): {"; ".join(reasons)}')
            raise RendererUnavailable(_loaded)
        os.environ['PYOPENGL_PLATFORM'] = platform
    else:  # PyOpenGL is bound to a platform already: that one, tried here, or none
        platform = user or 'default'
    try:
        import pyrender
        _tiny_render(pyrender)  # this process's own context, so that failures land here
    except Exception as err:  # noqa: BLE001  (GL stacks raise many kinds)
        _loaded = (f'pyrender on the {platform} platform failed: {type(err).__name__}: '
                   f'{err}')
        if not probed and not user:
            _loaded += ('; PyOpenGL was imported before a platform was chosen: set '
                        'PYOPENGL_PLATFORM=egl (or osmesa) before anything imports it')
        raise RendererUnavailable(_loaded) from err
    _loaded = (pyrender, platform)
    return _loaded


def image_projection_matrix(intrinsics: np.ndarray, width: int, height: int, znear: float,
                            zfar: float) -> np.ndarray:
    """OpenGL projection (4, 4) of a camera whose pixels are ``intrinsics @ (x, y, z)``.

    Args:
        intrinsics (np.ndarray): (3, 3) camera axes (x right, y down, z forward, metres)
            -> homogeneous continuous pixels (pixel (i, j) spans [i, i + 1) x [j, j + 1)),
            last row ``(0, 0, 1)``; any 2D affine of a pinhole (skew, rotation) is allowed.
        width, height (int): viewport in pixels.
        znear, zfar (float): clipping depths, metres.

    Returns:
        np.ndarray: (4, 4) matrix for OpenGL's eye axes (y up, looking down -z), whose
        viewport rows run bottom to top; pyrender flips them back to image rows.
    """
    (a, b, c), (d, e, f) = np.asarray(intrinsics, np.float64)[:2]
    if not np.allclose(intrinsics[2], (0, 0, 1)):
        raise ValueError(f'intrinsics must end with the row (0, 0, 1), got {intrinsics[2]}')
    # x_ndc = 2u/W - 1 and y_ndc = 1 - 2v/H with eye axes (X, Y, Z) = (x, -y, -z)
    return np.array([
        [2 * a / width, -2 * b / width, 1 - 2 * c / width, 0],
        [-2 * d / height, 2 * e / height, 2 * f / height - 1, 0],
        [0, 0, -(zfar + znear) / (zfar - znear), -2 * zfar * znear / (zfar - znear)],
        [0, 0, -1, 0]])


def shade_vertices(vertices: np.ndarray, faces: np.ndarray, ambient: float = 0.35
                   ) -> np.ndarray:
    """(V,) brightness of vertices lit from the camera: the numpy rasteriser's
    :func:`~unspat_mm.visualization.rasterizer.shade_faces` on area-weighted vertex
    normals, so that OpenGL interpolates it smoothly (Gouraud) over each face.

    ``ambient + (1 - ambient) |n_z|``: the sign of a normal does not matter, so neither
    does the mesh's face winding.
    """
    tri = vertices[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.maximum(np.linalg.norm(normals, axis=1), 1e-12)
    return ambient + (1 - ambient) * np.abs(normals[:, 2]) / length


class PyrenderMeshRenderer:
    """Meshes seen by a camera with given pixel intrinsics, drawn by OpenGL offscreen.

    All renderers share the process's one GL context, made at the first call. Only the
    pixel rectangle the meshes project into is rendered (its size rounded up to ``tile``
    pixels so that the framebuffer is rarely reallocated): a person covering a tenth of a
    frame costs about a tenth of a full-frame render.

    Shading is the numpy rasteriser's (light from the camera, ``ambient`` on faces seen
    edge-on), per vertex and interpolated, drawn unlit by OpenGL (pyrender's ``FLAT``
    pass): the track's colour stays the colour of a face seen head-on, as in the numpy
    overlay, and the GPU-less llvmpipe runs only a trivial fragment shader.

    Args:
        ambient (float): brightness of faces seen edge-on, 0..1. Defaults to 0.35.
        tile (int): rendered rectangles are multiples of this, pixels. Defaults to 64.

    Raises:
        RendererUnavailable: pyrender or an offscreen platform is missing.
    """

    def __init__(self, ambient: float = 0.35, tile: int = 64):
        self.pyrender, self.platform = load_pyrender()
        self.ambient, self.tile = ambient, int(tile)
        pyrender = self.pyrender

        class MatrixCamera(pyrender.camera.Camera):
            def __init__(self, projection, znear, zfar):
                super().__init__(znear=znear, zfar=zfar)
                self.projection = projection

            def get_projection_matrix(self, width=None, height=None):
                return self.projection
        self._camera_cls = MatrixCamera

    def render(self, meshes: Sequence[Tuple[np.ndarray, np.ndarray, Sequence[float]]],
               intrinsics: np.ndarray, image_size: Tuple[int, int]
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Render meshes into an image of ``image_size``.

        Args:
            meshes (list): ``(vertices (V, 3) metres in camera axes: x right, y down,
                z forward; faces (F, 3); colour RGB 0..255)`` triples, depth-tested
                against each other.
            intrinsics (np.ndarray): (3, 3) camera -> image pixels (see
                :func:`image_projection_matrix`).
            image_size (tuple): ``(height, width)``.

        Returns:
            tuple: (H, W, 4) uint8 RGBA (alpha: pixel coverage, anti-aliased; 0 where
            empty) and (H, W) float32 depth along z in metres (``inf`` where empty).
        """
        height, width = (int(v) for v in image_size)
        rgba = np.zeros((height, width, 4), np.uint8)
        depth = np.full((height, width), np.inf, np.float32)
        meshes = [(np.asarray(v, np.float64), np.asarray(f, np.int64), c)
                  for v, f, c in meshes if len(v) and len(f)]
        if not meshes:
            return rgba, depth
        points = np.concatenate([v for v, _, _ in meshes])
        z = points[:, 2]
        if not np.isfinite(points).all() or z.max() <= 0:
            return rgba, depth  # nothing in front of the camera
        znear = max(1e-3, 0.5 * z[z > 0].min())
        zfar = 2. * z.max() + 1.
        x0, y0, x1, y1 = 0, 0, width, height
        if z.min() > znear:  # every vertex projects: render only the rectangle they span
            uvw = points @ np.asarray(intrinsics, np.float64).T
            uv = uvw[:, :2] / uvw[:, 2:]
            x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int) - 1, 0)
            x1 = min(int(np.ceil(uv[:, 0].max())) + 1, width)
            y1 = min(int(np.ceil(uv[:, 1].max())) + 1, height)
            if x1 <= x0 or y1 <= y0:
                return rgba, depth
        view_w = -(-(x1 - x0) // self.tile) * self.tile
        view_h = -(-(y1 - y0) // self.tile) * self.tile
        shifted = np.asarray(intrinsics, np.float64).copy()
        shifted[0] -= x0 * shifted[2]
        shifted[1] -= y0 * shifted[2]
        color, zbuf = self._render(meshes, image_projection_matrix(
            shifted, view_w, view_h, znear, zfar), znear, zfar, view_w, view_h)
        h, w = y1 - y0, x1 - x0
        rgba[y0:y1, x0:x1] = color[:h, :w]
        zbuf = zbuf[:h, :w]
        depth[y0:y1, x0:x1] = np.where(zbuf > 0, zbuf, np.inf)
        return rgba, depth

    def _render(self, meshes, projection, znear, zfar, width, height):
        pyrender = self.pyrender
        scene = pyrender.Scene(bg_color=(0., 0., 0., 0.))
        gl_axes = np.array([1., -1., -1.])  # camera axes -> OpenGL eye axes (a rotation)
        white = pyrender.MetallicRoughnessMaterial(baseColorFactor=(1., 1., 1., 1.),
                                                   doubleSided=True)
        for vertices, faces, color in meshes:
            shade = shade_vertices(vertices, faces, self.ambient)
            rgb = np.clip(shade[:, None] * np.asarray(color, np.float64) / 255., 0, 1)
            colors = np.concatenate([rgb, np.ones((len(rgb), 1))], axis=1)
            scene.add(pyrender.Mesh([pyrender.Primitive(
                positions=vertices * gl_axes, indices=faces, color_0=colors,
                material=white)]))
        scene.add(self._camera_cls(projection, znear, zfar))
        with _GL_LOCK:
            renderer = _offscreen(pyrender, width, height)
            color, zbuf = renderer.render(scene, flags=pyrender.RenderFlags.RGBA
                                          | pyrender.RenderFlags.FLAT
                                          | pyrender.RenderFlags.SKIP_CULL_FACES)
        return color, zbuf


def _offscreen(pyrender, width: int, height: int):
    """The process's one OffscreenRenderer, resized. Shared and never deleted, since
    pyrender's ``delete`` terminates the EGL display, and with it every other context of
    the process (the display is per process)."""
    global _OFFSCREEN
    if _OFFSCREEN is None:
        _OFFSCREEN = pyrender.OffscreenRenderer(width, height)
    _OFFSCREEN.viewport_width, _OFFSCREEN.viewport_height = width, height
    return _OFFSCREEN
