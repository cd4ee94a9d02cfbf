"""The pyrender overlay renderer against the project's numpy rasteriser, and its fallback.

pyrender is part of the project's install (requirements/render.txt), so the tests that
render fail, not skip, where it or an offscreen GL platform is missing.
"""
from unittest import mock

import numpy as np
import pytest
import torch

from unspat_mm.apis import CropMaker, project_to_image
from unspat_mm.visualization import (PyrenderMeshRenderer, VideoOverlay, camera_view,
                                     pyrender_renderer, rasterize_mesh, track_color)

CUBE_FACES = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6], [0, 4, 5], [0, 5, 1],
                       [1, 5, 6], [1, 6, 2], [2, 6, 7], [2, 7, 3], [3, 7, 4], [3, 4, 0]])


def _cube(centre, half):
    corners = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                        [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], np.float64)
    return np.asarray(centre, np.float64) + half * corners


def _project(points, intrinsics):
    uvw = points @ intrinsics.T
    return uvw[:, :2] / uvw[:, 2:]


def _numpy_reference(vertices, faces, intrinsics, size):
    """Coverage and perspective-correct depth of the numpy rasteriser: 1/z is affine in
    screen space over a planar triangle, so rasterising -1/z and inverting is exact."""
    inv_depth, ids = rasterize_mesh(_project(vertices, intrinsics), -1 / vertices[:, 2],
                                    faces, size)
    return ids >= 0, -1 / inv_depth


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.fixture(scope='module')
def gl():
    return PyrenderMeshRenderer()


@pytest.fixture(scope='module')
def standin_person(standin_model_dir):
    """A stand-in body, upright with the left arm raised, over a 320x240 frame."""
    from unspat_mm.models.body.smpl_layer import SMPLBodyModel
    body = SMPLBodyModel(standin_model_dir)
    theta = torch.zeros(1, 72)
    theta[0, 0] = np.pi  # upright in camera axes (y down)
    theta[0, 16 * 3 + 2] = -1.0
    out = body(theta, torch.zeros(1, 10))
    frame = np.full((240, 320, 3), 50, np.uint8)
    _, affine = CropMaker(dict(type='VideoBBoxCrop', input_size=(64, 64)))(
        frame, np.array([150, 125, 150, 200.]))
    inst = dict(vertices=out['vertices'][0].numpy(), joints24=out['joints24'][0].numpy(),
                camera=np.array([0.5, 0.03, -0.05]), crop_affine=affine, track_id=2,
                bbox=[75, 25, 225, 225], uncertainty_map=np.zeros((4, 4, 4)), uncertainty=0.)
    return body.faces.numpy(), frame, inst


def test_a_cube_face_on_has_the_numpy_coverage_and_its_exact_depth(gl):
    # a skewed, off-centre camera: any 2D affine of a pinhole is rendered exactly
    intrinsics = np.array([[300., 25., 140.], [-10., 280., 100.], [0., 0., 1.]])
    verts = _cube((0.1, -0.05, 2.5), 0.3)  # front face at z = 2.2 m
    rgba, depth = gl.render([(verts, CUBE_FACES, (200, 120, 40))], intrinsics, (200, 260))
    covered, ref_depth = _numpy_reference(verts, CUBE_FACES, intrinsics, (200, 260))
    drawn = np.isfinite(depth)
    assert covered.sum() > 5000
    # alpha is anti-aliased coverage (4 samples); depth is one sample's
    assert not (drawn & (rgba[..., 3] == 0)).any() and drawn[rgba[..., 3] == 255].all()
    assert _iou(drawn, covered) > 0.98  # measured 0.990: pixels on the outline differ
    front = (_project(verts[:4], intrinsics) + 0.5).astype(int)  # the front face's corners
    u, v = front.mean(0).astype(int)
    assert depth[v, u] == pytest.approx(2.2, abs=1e-4)
    both = drawn & covered
    # everywhere: within MSAA's sub-pixel depth sample offset on the oblique faces
    assert np.abs(depth[both] - ref_depth[both]).max() < 0.02
    assert np.median(np.abs(depth[both] - ref_depth[both])) < 1e-3


def test_a_tilted_cube_over_the_border_whatever_rectangle_is_rendered(gl):
    rng = np.random.default_rng(0)
    angles = rng.uniform(-0.6, 0.6, 3)
    rot = torch.linalg.matrix_exp(torch.tensor([[0, -angles[2], angles[1]],
                                                [angles[2], 0, -angles[0]],
                                                [-angles[1], angles[0], 0]])).numpy()
    verts = (_cube((0, 0, 0), 0.25) @ rot.T) + (0.85, 0.6, 3.0)  # over the bottom right
    intrinsics = np.array([[400., 0., 160.], [0., 400., 120.], [0., 0., 1.]])
    rgba, depth = gl.render([(verts, CUBE_FACES, (0, 255, 0))], intrinsics, (240, 320))
    covered, ref_depth = _numpy_reference(verts, CUBE_FACES, intrinsics, (240, 320))
    drawn = np.isfinite(depth)
    assert covered.sum() > 2000 and covered[-1].any() and covered[:, -1].any()
    assert _iou(drawn, covered) > 0.97
    both = drawn & covered
    assert np.abs(depth[both] - ref_depth[both]).max() < 0.03
    # shaded as the numpy rasteriser does: green only, 0.35..1 of it by the angle to z
    r, g, b = rgba[drawn, :3].astype(int).T
    assert r.max() == 0 and b.max() == 0
    full = rgba[..., 3] == 255
    assert 0.35 * 255 - 1 <= rgba[full, 1].min() and rgba[full, 1].max() <= 255
    # only the rectangle the meshes project into is rendered: a far speck at the top
    # left widens it to the whole frame, and the cube's pixels stay the same
    speck = np.array([[-1.4, -1.0, 4.], [-1.38, -1.0, 4.], [-1.4, -0.98, 4.]])
    rgba2, depth2 = gl.render([(verts, CUBE_FACES, (0, 255, 0)),
                               (speck, np.array([[0, 1, 2]]), (255, 0, 0))], intrinsics,
                              (240, 320))
    assert np.isfinite(depth2[:40, :40]).any()
    np.testing.assert_array_equal(rgba2[120:], rgba[120:])
    np.testing.assert_allclose(depth2[120:], depth[120:], atol=1e-4)


def test_camera_view_is_project_to_image_as_a_pinhole(standin_person):
    faces, frame, inst = standin_person
    inst = dict(inst)
    # a rotated, anisotropic crop affine too: the intrinsics absorb any affine
    inst['crop_affine'] = np.array([[0.3, 0.08, -20.], [-0.05, 0.35, -15.]])
    for case in (standin_person[2], inst):
        verts, intrinsics = camera_view(case, 1000 / 256, (64, 64))
        ref = project_to_image(case['vertices'], case['joints24'][0], case['camera'],
                               1000 / 256, (64, 64), case['crop_affine'])
        np.testing.assert_allclose(_project(verts, intrinsics), ref, atol=2e-3)
        # the root sits at depth focal / s, as the semi-perspective camera says
        root = verts - case['vertices'] + case['joints24'][0]
        np.testing.assert_allclose(root[0, 2], 1000 / 256 / case['camera'][0])


def test_the_body_overlay_agrees_with_the_numpy_rasteriser(standin_person, gl):
    faces, frame, inst = standin_person
    verts, intrinsics = camera_view(inst, 1000 / 256, (64, 64))
    rgba, depth = gl.render([(verts, faces, (255, 255, 255))], intrinsics, frame.shape[:2])
    covered, ref_depth = _numpy_reference(verts, faces, intrinsics, frame.shape[:2])
    drawn = np.isfinite(depth)
    assert covered.sum() > 2000
    # thin limbs, so the outline weighs: the pixels covered at least half agree best with
    # the numpy rasteriser's pixel centres (measured 0.975); the depth buffer holds one
    # sub-pixel sample of four, shifted from the centre (measured 0.959)
    assert _iou(rgba[..., 3] >= 128, covered) > 0.96
    assert _iou(drawn, covered) > 0.94
    ys, xs = np.nonzero(covered)
    v, u = int(np.median(ys)), int(np.median(xs))  # the torso's centre
    assert drawn[v, u] and abs(depth[v, u] - ref_depth[v, u]) < 2e-3  # measured 0.5 mm
    # the overlays of both renderers: same pixels, the track's colour
    canvases = {}
    for name in ('pyrender', 'numpy'):
        overlay = VideoOverlay(faces, 1000 / 256, (64, 64), renderer=name)
        assert overlay.renderer == name
        canvas = frame.copy()
        overlay.render_mesh(canvas, inst)
        canvases[name] = canvas
    # painted at least half (pyrender's outline pixels are partly covered): track 2's red
    # is 0, so a full blend moves red from 50 to 12.5
    painted = {k: 50 - c[..., 2].astype(int) > 18 for k, c in canvases.items()}
    assert _iou(painted['pyrender'], painted['numpy']) > 0.96  # measured 0.975
    # the torso faces the camera: about the track's colour, 0.75 over the grey 50, in both
    expected = 0.25 * 50 + 0.75 * np.array(track_color(2), float)
    for canvas in canvases.values():
        assert np.abs(canvas[v, u] - expected).max() < 6


def test_auto_falls_back_to_numpy_and_says_why(monkeypatch):
    monkeypatch.setattr(pyrender_renderer, '_loaded', None)
    real = pyrender_renderer.importlib.util.find_spec
    monkeypatch.setattr(pyrender_renderer.importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'pyrender' else real(name, *a))
    with mock.patch('unspat_mm.visualization.video_overlay.print_log') as log:
        overlay = VideoOverlay(CUBE_FACES, 4., (64, 64), renderer='auto')
    assert overlay.renderer == 'numpy' and overlay._gl is None
    assert log.call_count == 1
    message = log.call_args[0][0]
    assert 'numpy z-buffer rasteriser' in message
    assert 'missing Python package(s) pyrender' in message and '--no-deps' in message
    with pytest.raises(RuntimeError, match=r"renderer='pyrender' is unavailable: missing "
                       r'Python package\(s\) pyrender.*requirements/render.txt'):
        VideoOverlay(CUBE_FACES, 4., (64, 64), renderer='pyrender')
    with pytest.raises(ValueError, match='renderer must be one of auto, pyrender, numpy'):
        VideoOverlay(CUBE_FACES, 4., (64, 64), renderer='opengl')
    # numpy still draws: the overlay of a cube
    inst = dict(vertices=_cube((0, 0, 0), 0.2), joints24=np.zeros((24, 3)),
                camera=np.array([1., 0., 0.]), crop_affine=np.array([[1., 0, 0], [0, 1, 0]]),
                track_id=0)
    canvas = np.zeros((64, 64, 3), np.uint8)
    overlay.render_mesh(canvas, inst)
    assert (canvas > 0).any(-1).sum() > 100


def test_a_platform_that_fails_is_reported_not_fatal():
    reason = pyrender_renderer._probe('no-such-platform')
    assert reason.startswith('no-such-platform: ') and 'Unsupported PyOpenGL platform' in reason


def test_the_inferencer_and_the_demo_take_the_renderer():
    from demo.unspat_demo import parse_args
    from unspat_mm.apis import UNSPATInferencer
    base = ['v.mp4', '--config', 'c.py', '--out-dir', 'o']
    assert parse_args(base).renderer == 'auto'
    assert parse_args(base + ['--renderer', 'numpy']).renderer == 'numpy'
    with pytest.raises(ValueError, match='renderer must be one of'):
        UNSPATInferencer('configs/unspat_synthetic.py', renderer='gl')


class _FakeGL:
    """Stands in for PyrenderMeshRenderer: one premultiplied half-covered pixel, or a
    GL error."""

    def __init__(self, fail=False):
        self.fail, self.calls = fail, 0

    def render(self, meshes, intrinsics, size):
        self.calls += 1
        if self.fail:
            raise OSError('EGL context lost')
        rgba = np.zeros(size + (4, ), np.uint8)
        rgba[5, 5] = (200 // 2, 100 // 2, 0, 128)  # colour (200, 100, 0) at coverage 0.5
        return rgba, np.full(size, np.inf)


def _inst(scale=1.0):
    return dict(vertices=_cube((0, 0, 0), 0.2), joints24=np.zeros((24, 3)),
                camera=np.array([scale, 0., 0.]),
                crop_affine=np.array([[1., 0, 0], [0, 1, 0]]), track_id=0)


def test_gl_edges_blend_as_premultiplied_and_failures_fall_back():
    overlay = VideoOverlay(CUBE_FACES, 4., (64, 64), renderer='numpy')
    overlay._gl = _FakeGL()
    canvas = np.full((16, 16, 3), 50, np.uint8)
    overlay.render_mesh(canvas, _inst())
    a = 0.75 * 128 / 255  # opacity x coverage
    expected = (1 - a) * 50 + 0.75 * np.array([0, 50, 100])  # BGR of the premultiplied RGB
    np.testing.assert_allclose(canvas[5, 5], expected, atol=1)
    assert (canvas[0, 0] == 50).all()
    # a camera scale <= 0 puts the root behind the pinhole: the numpy rasteriser draws it
    canvas = np.zeros((64, 64, 3), np.uint8)
    overlay.render_mesh(canvas, _inst(scale=-0.5))
    assert overlay._gl.calls == 1
    # a GL error mid-video: 'auto' warns once and draws the rest with numpy ...
    overlay._gl, overlay.requested = _FakeGL(fail=True), 'auto'
    with mock.patch('unspat_mm.visualization.video_overlay.print_log') as log:
        canvas = np.zeros((64, 64, 3), np.uint8)
        overlay.render_mesh(canvas, _inst())
        overlay.render_mesh(canvas, _inst())
    assert log.call_count == 1 and 'EGL context lost' in log.call_args[0][0]
    assert overlay.renderer == 'numpy' and (canvas > 0).any(-1).sum() > 100
    # ... an explicit 'pyrender' says so instead
    overlay._gl, overlay.requested = _FakeGL(fail=True), 'pyrender'
    with pytest.raises(RuntimeError, match="pyrender failed to render: OSError: EGL context "
                       "lost; use renderer='numpy'"):
        overlay.render_mesh(canvas, _inst())
