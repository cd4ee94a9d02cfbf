"""Generate one synthetic sequence: motion -> body -> camera -> boxes -> rendered frames.

Every random choice of sequence ``s`` comes from its own streams
``np.random.default_rng([seed, s, stream])`` (motion, camera, appearance, background,
jitter, occlusion, noise), so a sequence does not depend on the others, on the split
sizes, or on whether occlusion is on (the occlusion test renders both and compares).

Ground truth per frame (camera frame: x right, y down, z forward; metres):

- ``theta`` (72,) axis-angle; joint 0 is the global orientation *in the camera frame*
  (it includes SMPL's y-up -> camera y-down half-turn), ``betas`` (10,);
- ``transl`` (3,): the body model's output (posed about its root joint, no translation)
  plus ``transl`` is the body in the camera frame;
- ``joints29`` / ``joints24`` / ``joints17`` / ``joints14`` (K, 3) in the camera frame
  (subtract joint 0 of ``joints29``, the pelvis, for root-relative ones);
- ``keypoints2d`` (29, 2) continuous pixel coordinates (see :mod:`.camera`), the
  projection of ``joints29`` with ``focal`` and ``principal``;
- ``bbox_gt`` (4,) tight square box around the projected mesh (``cx, cy, w, h``) and
  ``bbox`` (4,) the jittered, tracker-like box;
- ``twist`` (23,) twist angles of joints 1..23 (radians);
- ``occluder_mask`` / ``person_mask`` (H, W) bool, ``occlusion_ratio`` (fraction of the
  person's pixels under an occluder) and ``occluded`` (ratio >= ``min_ratio``).

Vertices are not stored (82 kB a frame): ``body_model(theta, betas)['vertices'] + transl``
recomputes them exactly.
"""
import numpy as np
import torch
from einops import rearrange

from unspat_mm.models.utils.twist_swing_ik import twist_angles_from_pose

from ..transforms.procedural import make_background, make_occluder
from .camera import SMPL_TO_CAMERA, jitter_bboxes, project, smooth_noise, square_bbox
from .deepmimic import deepmimic_to_smpl, load_deepmimic_clip
from .motion import axis_rotation, channels_to_rotmats, rotmats_to_axis_angle, sample_motion
from .render import PART_COLORS, VertexNormals, paste_occluder, splat_body, vertex_parts

__all__ = ['STREAMS', 'SequenceRenderer']

STREAMS = ('motion', 'camera', 'appearance', 'background', 'jitter', 'occlusion', 'noise')


class SequenceRenderer:
    """Holds the body model and everything fixed across sequences.

    Args:
        body_model (SMPLBodyModel): the body model (SMPL or the stand-in).
        settings (dict): full generation settings (see ``DEFAULT_SETTINGS`` in
            :mod:`.cache`).
        clips (list[str], optional): DeepMimic clip paths when ``motion.source`` uses them.
            Defaults to None.
    """

    def __init__(self, body_model, settings, clips=None):
        self.body = body_model
        self.cfg = settings
        faces = body_model.faces.cpu().numpy()
        weights = body_model.smpl.lbs_weights.cpu().numpy()
        template = body_model.smpl.v_template.cpu().numpy()
        self.normals = VertexNormals(faces, len(weights))
        self.parts = vertex_parts(weights, self.normals(template[None].astype(np.float64))[0])
        self.edge = float(np.linalg.norm(template[faces[:, 0]] - template[faces[:, 1]],
                                         axis=-1).mean())
        self.clips = [deepmimic_to_smpl(load_deepmimic_clip(p), settings['fps'])
                      for p in clips or []]

    def streams(self, seq_id):
        seed = self.cfg['seed']
        return {name: np.random.default_rng([seed, seq_id, i]) for i, name in enumerate(STREAMS)}

    def _motion(self, rng, num):
        """(L, 3, 3) root orientation (SMPL frame) and (L, 23, 3, 3) local rotations."""
        mcfg = self.cfg['motion']
        use_clip = mcfg['source'] == 'deepmimic' or (
            mcfg['source'] == 'mixed' and rng.uniform() < mcfg['deepmimic_prob'])
        if use_clip:
            root, local, _ = self.clips[rng.integers(len(self.clips))]
            if len(root) < num:  # loop short clips back and forth
                reps = int(np.ceil(num / len(root)))
                order = np.concatenate([np.arange(len(root))[::(-1)**k] for k in range(reps)])
                root, local = root[order], local[order]
            start = rng.integers(len(root) - num + 1)
            yaw = axis_rotation('y', rng.uniform(*mcfg['yaw_range']))
            return yaw @ root[start:start + num], local[start:start + num]
        channels, root = sample_motion(rng, num, self.cfg['fps'], mcfg['walk_prob'],
                                       mcfg['liveliness'], mcfg['spread'], mcfg['yaw_speed'],
                                       mcfg['yaw_range'])
        return root, channels_to_rotmats(channels)

    @torch.no_grad()
    def _body(self, rotmats, betas):
        out = self.body(torch.as_tensor(rotmats, dtype=torch.float32),
                        torch.as_tensor(betas, dtype=torch.float32))
        rest = self.body.rest_joints29(torch.as_tensor(betas[:1], dtype=torch.float32))
        twist = twist_angles_from_pose(torch.as_tensor(rotmats, dtype=torch.float32), rest)
        out = {k: v.double().numpy() for k, v in out.items()}
        out['twist'] = twist.double().numpy()
        return out

    def __call__(self, seq_id, occlusion=True):
        """Generate sequence ``seq_id``: a dict of per-frame arrays (see module docstring)
        plus ``images`` (L, H, W, 3) uint8 RGB."""
        cfg, rngs = self.cfg, self.streams(seq_id)
        num, fps = cfg['num_frames'], cfg['fps']
        height, width = cfg['image_size']
        # motion and shape
        root_w, local = self._motion(rngs['motion'], num)
        betas = np.clip(rngs['motion'].normal(0, cfg['betas_std'], 10), -2.5, 2.5)
        rotmats = np.concatenate([(SMPL_TO_CAMERA @ root_w)[:, None], local], axis=1)
        body = self._body(rotmats, np.repeat(betas[None], num, 0))
        # camera: focal, height above the ground, and a slowly drifting body position
        cam = rngs['camera']
        focal = cam.uniform(*cfg['focal']) * width
        principal = np.array([width / 2, height / 2])
        ground = cam.uniform(*cfg['camera_height'])  # ground plane at y = +ground
        x = cam.uniform(*cfg['lateral']) + smooth_noise(cam, num, fps, cfg['drift'], max_freq=.3)
        z = cam.uniform(*cfg['distance']) + smooth_noise(cam, num, fps, cfg['drift'], max_freq=.3)
        verts = body['vertices']
        pelvis = body['joints24'][:, 0]
        transl = np.stack([x - pelvis[:, 0], ground - verts[..., 1].max(1), z - pelvis[:, 2]], -1)
        verts = verts + transl[:, None]
        joints = {k: body[k] + transl[:, None] for k in ('joints29', 'joints24', 'joints17',
                                                          'joints14')}
        keypoints2d = project(joints['joints29'], focal, principal)
        verts2d = project(verts, focal, principal)
        bbox_gt = square_bbox(verts2d, cfg['bbox_scale'])
        bbox = jitter_bboxes(rngs['jitter'], bbox_gt, fps, **cfg['bbox_jitter'])
        images, person_mask = self._render(rngs, verts, verts2d, focal)
        occluder_mask = np.zeros_like(person_mask)
        if occlusion:
            self._occlude(rngs['occlusion'], images, occluder_mask, keypoints2d, bbox_gt)
        noise = rngs['noise'].standard_normal(images.shape, dtype=np.float32) * cfg['noise_std']
        images = np.clip(images + noise, 0, 255).round().astype(np.uint8)
        ratio = (occluder_mask & person_mask).sum((1, 2)) / np.maximum(person_mask.sum((1, 2)), 1)
        theta = rearrange(rotmats_to_axis_angle(rotmats), 'l j c -> l (j c)')
        per_frame = dict(theta=theta, betas=np.repeat(betas[None], num, 0), transl=transl,
                         keypoints2d=keypoints2d, bbox=bbox, bbox_gt=bbox_gt, twist=body['twist'],
                         focal=np.full(num, focal), principal=np.repeat(principal[None], num, 0),
                         occlusion_ratio=ratio, **joints)
        return dict(images=images, person_mask=person_mask, occluder_mask=occluder_mask,
                    occluded=ratio >= cfg['occlusion']['min_ratio'],
                    sequence_id=np.full(num, seq_id, np.int32),
                    frame_index=np.arange(num, dtype=np.int32),
                    **{k: v.astype(np.float32) for k, v in per_frame.items()})

    def _render(self, rngs, verts, verts2d, focal):
        height, width = self.cfg['image_size']
        app = rngs['appearance']
        colors = np.clip(PART_COLORS + app.normal(0, 18, PART_COLORS.shape), 0, 255)[self.parts]
        light = np.array([app.uniform(-.6, .6), app.uniform(-.9, -.2), -1.])
        light /= np.linalg.norm(light)
        ambient = app.uniform(.3, .5)
        normals = self.normals(verts.astype(np.float32))
        shade = ambient + (1 - ambient) * np.clip(normals @ light, 0, 1)  # (L, V)
        background = make_background(rngs['background'], (height, width))
        images = np.repeat(background[None], len(verts), 0)
        masks = np.zeros((len(verts), height, width), dtype=bool)
        for t in range(len(verts)):
            # footprint: the projected mean edge length, so that neighbours overlap
            spacing = focal * self.edge / verts[t, :, 2].mean()
            footprint = int(np.clip(np.ceil(1.5 * spacing), 2, 6))
            masks[t] = splat_body(images[t], verts2d[t], verts[t, :, 2],
                                  colors * shade[t, :, None], footprint)
        return images.astype(np.float32), masks

    def _occlude(self, rng, images, occluder_mask, keypoints2d, bbox_gt):
        ocfg = self.cfg['occlusion']
        num = len(images)
        if rng.uniform() >= ocfg['seq_prob']:
            return
        for _ in range(rng.integers(1, ocfg['max_events'] + 1)):
            lo, hi = (min(v, num) for v in ocfg['length'])
            length = int(rng.integers(lo, hi + 1))
            start = int(rng.integers(0, num - length + 1))
            side = bbox_gt[start:start + length, 2].mean()
            mask, texture = make_occluder(rng, rng.uniform(*ocfg['radius']) * side)
            joint = rng.integers(keypoints2d.shape[1])
            centre = keypoints2d[start, joint] + rng.normal(0, .1 * side, 2)
            velocity = rng.normal(0, ocfg['speed'] * side / 100, 2)  # pixels per frame
            for k in range(length):
                t = start + k
                occluder_mask[t] |= paste_occluder(images[t], mask, texture,
                                                   centre + k * velocity)
