"""The numpy z-buffer rasteriser against brute force, and the overlay's geometry."""
import numpy as np
import pytest
import torch

from unspat_mm.apis import CropMaker, project_to_image
from unspat_mm.visualization import VideoOverlay, rasterize_mesh, track_color


def _brute_force(points, depth, faces, size):
    h, w = size
    zbuf = np.full((h, w), np.inf)
    ids = np.full((h, w), -1)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    for f, (a, b, c) in enumerate(faces):
        (ax, ay), (bx, by), (cx, cy) = points[a], points[b], points[c]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12:
            continue
        w0 = ((bx - xs) * (cy - ys) - (by - ys) * (cx - xs)) / area
        w1 = ((cx - xs) * (ay - ys) - (cy - ys) * (ax - xs)) / area
        w2 = 1 - w0 - w1
        inside = (w0 >= -1e-7) & (w1 >= -1e-7) & (w2 >= -1e-7)
        z = w0 * depth[a] + w1 * depth[b] + w2 * depth[c]
        closer = inside & (z < zbuf)
        zbuf[closer], ids[closer] = z[closer], f
    return zbuf, ids


def test_a_square_covers_exactly_the_pixel_centres_inside_it():
    points = np.array([[2., 3.], [6., 3.], [6., 8.], [2., 8.]])
    zbuf, ids = rasterize_mesh(points, np.ones(4), np.array([[0, 1, 2], [0, 2, 3]]), (10, 10))
    expected = np.zeros((10, 10), bool)
    expected[3:8, 2:6] = True
    np.testing.assert_array_equal(ids >= 0, expected)
    np.testing.assert_array_equal(zbuf[expected], 1.)


@pytest.mark.parametrize('seed', [0, 1])
def test_random_meshes_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-5, 45, (60, 2))  # some triangles leave the image
    depth = rng.uniform(1, 3, 60)
    faces = rng.integers(0, 60, (80, 3))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
                  & (faces[:, 0] != faces[:, 2])]
    zbuf, ids = rasterize_mesh(points, depth, faces, (40, 36))
    ref_z, ref_ids = _brute_force(points, depth, faces, (40, 36))
    np.testing.assert_array_equal(ids >= 0, ref_ids >= 0)
    np.testing.assert_allclose(zbuf[ids >= 0], ref_z[ids >= 0], atol=1e-9)


@pytest.mark.parametrize('renderer', ['numpy', 'pyrender'])
def test_overlay_draws_the_mesh_where_the_camera_projects_it(standin_model_dir, renderer):
    from unspat_mm.models.body.smpl_layer import SMPLBodyModel
    body = SMPLBodyModel(standin_model_dir)
    theta = torch.zeros(1, 72)
    theta[0, 0] = np.pi  # upright in camera axes (y down)
    out = body(theta, torch.zeros(1, 10))
    verts, joints = out['vertices'][0].numpy(), out['joints24'][0].numpy()
    frame = np.full((240, 320, 3), 50, np.uint8)
    _, affine = CropMaker(dict(type='VideoBBoxCrop', input_size=(64, 64)))(
        frame, np.array([160, 120, 150, 200.]))
    inst = dict(vertices=verts, joints24=joints, camera=np.array([0.5, 0.02, -0.05]),
                crop_affine=affine, track_id=3, bbox=[85, 20, 235, 220],
                uncertainty_map=np.zeros((4, 4, 4)), uncertainty=0.0)
    overlay = VideoOverlay(body.faces.numpy(), 1000 / 256, (64, 64), banner='STAND-IN: x',
                           renderer=renderer)
    vis = overlay(frame, [inst])
    assert vis.shape[0] == 240 and vis.shape[1] > 320  # the frame and the side panel
    assert (vis[0, :320, 2] > 150).mean() > 0.9  # the red stand-in banner
    canvas = frame.copy()
    overlay.render_mesh(canvas, inst)
    pts = project_to_image(verts, joints[0], inst['camera'], 1000 / 256, (64, 64), affine)
    drawn = np.argwhere((canvas != 50).any(-1))[:, ::-1]  # (x, y)
    # the mesh covers the projected vertices' extent, to the pixel
    np.testing.assert_allclose(drawn.min(0), np.floor(pts.min(0)), atol=1.5)
    np.testing.assert_allclose(drawn.max(0), np.floor(pts.max(0)), atol=1.5)
    # the mesh takes the track's colour (shaded): hue of (B, G, R) = track_color(3)
    centre = canvas[int(pts[:, 1].mean()), int(pts[:, 0].mean())].astype(float)
    color = np.array(track_color(3), float)
    assert np.corrcoef(centre, color)[0, 1] > 0.9
