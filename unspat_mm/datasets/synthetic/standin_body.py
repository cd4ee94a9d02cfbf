"""Stand-in body model: a human-shaped mannequin with SMPL's exact array layout.

SMPL cannot be shipped (research licence), so tests, demos and the synthetic benchmark can
use this mannequin instead (``SMPLBodyModel`` loads it like SMPL; it lives beside the
synthetic benchmark because nothing but generated data and tests needs it).
**It is not SMPL**: numbers measured on it are not SMPL numbers.

Arrays (names, shapes and dtypes as in SMPL's model file; metres; y up, the body faces +z,
its left side is at +x; T-pose; pelvis at (0, -0.22, 0.02) as in SMPL):

- ``v_template`` (6890, 3) float64, ``f`` (13776, 3) uint32: one closed, consistently
  oriented genus-0 surface. It is made of 7 closed tubes (torso+neck+head, two arms with
  flat hands, two legs, two feet), each a stack of elliptical rings capped by a pole vertex,
  joined by 6 small triangle bridges. A closed genus-0 surface has F = 2V - 4, so 6890
  vertices give exactly SMPL's 13776 faces. The poles at the head top, hand tips and toes
  are the vertices in :data:`LEAF_VERTEX_IDS`.
- ``J_regressor`` (24, 6890) float64: nonnegative rows summing to 1, each over ~96 vertices
  around its joint, solved so that ``J_regressor @ v_template == DESIGN_JOINTS``.
- ``weights`` (6890, 24) float64: softmin of the distance to each joint's bone(s), among the
  joints that may move the vertex's body part; rows sum to 1.
- ``shapedirs`` (6890, 3, 10) float64, per unit beta: beta0 height (+5 cm), beta1 girth,
  beta2..9 smaller: limb length, shoulder width, hip width, head size, belly, torso length,
  limb thickness, chest depth. Joints follow through ``J_regressor``.
- ``posedirs`` (6890, 3, 207) float64: small bulges along the ring normal of the vertices
  shared by a joint and its parent (each coefficient at most 5 mm per unit of an entry of
  SMPL's pose feature R - I; under 1 cm for 0.5 rad random poses), so that pose blend
  shapes take part in every test.
- ``kintree_table`` (2, 24) int64: row 0 the parents with the root as 2**32 - 1, row 1 0..23.

plus a (17, 6890) Human3.6M regressor whose rows follow ``skeleton.H36M_JOINT_NAMES``.
The seed only sets details (posedirs pattern, amplitudes of beta2..9), never the anatomy.
"""
import os
import os.path as osp

import numpy as np
from einops import rearrange
from scipy.optimize import nnls
from scipy.spatial import cKDTree

from unspat_mm.models.body.smpl_layer import (NUM_FACES, NUM_VERTICES, STANDIN_H36M_FILE,
                                              STANDIN_MODEL_FILE)
from unspat_mm.structures.skeleton import (H36M_JOINT_NAMES, LEAF_VERTEX_IDS, SMPL_FLIP_PAIRS,
                                           SMPL_JOINT_NAMES, SMPL_PARENTS)

NUM_BETAS = 10
README_FILE = 'README.txt'

# Designed rest positions (metres): the centre line and the left side; the right mirrors x.
_CENTRE = {'pelvis': (0., -.22, .02), 'spine1': (0., -.11, 0.), 'spine2': (0., .02, 0.),
           'spine3': (0., .075, .03), 'neck': (0., .29, -.015), 'head': (0., .355, .035)}
_LEFT = {'hip': (.07, -.31, .02), 'knee': (.10, -.69, .015), 'ankle': (.09, -1.09, -.03),
         'foot': (.12, -1.145, .10), 'collar': (.078, .195, -.005), 'shoulder': (.172, .23, -.02),
         'elbow': (.435, .22, -.04), 'wrist': (.682, .223, -.04), 'hand': (.768, .222, -.05),
         'hand_tip': (.87, .222, -.05), 'toe': (.13, -1.152, .168)}
_CENTRE_H36M = {'pelvis': (0., -.225, .02), 'spine': (0., 0., .005), 'thorax': (0., .265, -.005),
                'neck_nose': (0., .43, .08), 'head_top': (0., .50, .03)}
_LEFT_H36M = {'hip': (.085, -.32, .02), 'knee': (.10, -.70, .02), 'ankle': (.09, -1.095, -.03),
              'shoulder': (.165, .235, -.02), 'elbow': (.44, .22, -.04), 'wrist': (.69, .222, -.04)}
HEAD_TOP = (0., .545, .02)


def _named(names, centre, left):
    out = []
    for name in names:
        if name in centre:
            out.append(centre[name])
            continue
        side, part = name.split('_', 1)
        x, y, z = left[part]
        out.append((x if side == 'left' else -x, y, z))
    return np.array(out, dtype=np.float64)


DESIGN_JOINTS = _named(SMPL_JOINT_NAMES, _CENTRE, _LEFT)  # (24, 3)
DESIGN_H36M_JOINTS = _named(H36M_JOINT_NAMES, _CENTRE_H36M, _LEFT_H36M)  # (17, 3)
# head top, left/right hand tip, left/right toe (skeleton.LEAF_NAMES order)
DESIGN_LEAVES = np.concatenate(
    [[HEAD_TOP], _named(('left_hand_tip', 'right_hand_tip', 'left_toe', 'right_toe'), {}, _LEFT)])

# Tube keyframes (s, r_u, r_v, c_u, c_v): ring centre s*e_axis + c_u*e_u + c_v*e_v, ring
# half-axes r_u, r_v; e_u x e_v points along the tube so that faces come out outward.
_E = np.eye(3)
_HEAD_Y = np.linspace(.40, .538, 8)
_HEAD_S = np.sqrt(1 - ((_HEAD_Y - .445) / .10)**2)
_TORSO = [(-.345, .06, .07, .02, 0), (-.33, .085, .12, .02, 0), (-.30, .10, .155, .02, 0),
          (-.24, .11, .165, .02, 0), (-.15, .10, .15, .015, 0), (-.08, .095, .14, .01, 0),
          (.02, .10, .145, .01, 0), (.10, .11, .16, .02, 0), (.17, .105, .175, .01, 0),
          (.21, .09, .185, 0, 0), (.245, .075, .15, -.005, 0), (.265, .06, .08, -.01, 0),
          (.28, .055, .058, -.01, 0), (.33, .058, .055, 0, 0), (.37, .08, .065, .02, 0)
          ] + [(y, .095 * s, .078 * s, .025, 0) for y, s in zip(_HEAD_Y, _HEAD_S)]
_ARM = [(.07, .035, .035, .20, -.005), (.10, .05, .05, .205, -.01),
        (.172, .058, .058, .23, -.02), (.25, .05, .05, .225, -.025),
        (.40, .042, .042, .22, -.035), (.435, .038, .04, .22, -.04),
        (.50, .04, .042, .221, -.04), (.65, .028, .033, .223, -.04),
        (.682, .025, .032, .223, -.04), (.72, .018, .045, .223, -.045),
        (.768, .017, .046, .222, -.05), (.82, .013, .038, .222, -.05),
        (.855, .01, .025, .222, -.05), (.866, .006, .012, .222, -.05)]
_LEG = [(-.26, .05, .05, .072, .02), (-.31, .07, .09, .075, .02), (-.40, .068, .085, .085, .02),
        (-.60, .06, .065, .097, .018), (-.69, .052, .055, .10, .015),
        (-.80, .055, .06, .098, -.005), (-1.00, .038, .04, .092, -.02),
        (-1.09, .035, .038, .09, -.03), (-1.12, .025, .03, .09, -.03)]
_FOOT = [(-.07, .025, .025, .09, -1.135), (-.05, .035, .035, .092, -1.13),
         (-.03, .038, .045, .093, -1.12), (.03, .042, .035, .105, -1.13),
         (.10, .048, .025, .12, -1.145), (.14, .042, .02, .125, -1.15),
         (.16, .025, .015, .128, -1.152)]
# name: (axis, e_u, e_v, keys, rings, segments, start pole, end pole), joints that move it.
# Vertices: sum(rings * segments + 2) = 2162 + 2 * (1202 + 962 + 200) = 6890.
_PARTS = {
    'torso': ((1, 2, 0, _TORSO, 45, 48, (0., -.36, .02), HEAD_TOP),
              (0, 1, 2, 3, 6, 9, 12, 13, 14, 15, 16, 17)),
    'left_arm': ((0, 1, 2, _ARM, 50, 24, (.06, .20, -.005), _LEFT['hand_tip']),
                 (9, 13, 16, 18, 20, 22)),
    'left_leg': ((1, 0, 2, _LEG, 30, 32, (.072, -.25, .02), (.09, -1.13, -.03)),
                 (0, 1, 4, 7, 10)),
    'left_foot': ((2, 0, 1, _FOOT, 11, 18, (.09, -1.135, -.078), _LEFT['toe']), (7, 10)),
}
_ORDER = ('torso', 'left_arm', 'left_leg', 'left_foot', 'right_arm', 'right_leg', 'right_foot')
_BRIDGES = (('torso', 'left_arm'), ('torso', 'right_arm'), ('torso', 'left_leg'),
            ('torso', 'right_leg'), ('left_leg', 'left_foot'), ('right_leg', 'right_foot'))
_LEAF_POLES = ('torso', 'left_arm', 'right_arm', 'left_foot', 'right_foot')  # end poles
_FLIP = dict(SMPL_FLIP_PAIRS + tuple((b, a) for a, b in SMPL_FLIP_PAIRS))


def _tube(axis, e_u, e_v, keys, rings, segs, start, end):
    """Closed tube: ``rings`` x ``segs`` ring vertices then the two poles; 2*rings*segs faces."""
    keys = np.asarray(keys, dtype=np.float64)
    s = np.linspace(keys[0, 0], keys[-1, 0], rings)
    order = np.argsort(keys[:, 0])
    ru, rv, cu, cv = (np.interp(s, keys[order, 0], keys[order, i])[:, None] for i in range(1, 5))
    centres = s[:, None] * _E[axis] + cu * _E[e_u] + cv * _E[e_v]
    theta = 2 * np.pi * np.arange(segs) / segs
    ring_pts = (centres[:, None] + (ru * np.cos(theta))[..., None] * _E[e_u] +
                (rv * np.sin(theta))[..., None] * _E[e_v])
    verts = np.concatenate([rearrange(ring_pts, 'n m c -> (n m) c'), [start, end]])
    centre_of = np.concatenate([np.repeat(centres, segs, axis=0), [start, end]])
    i, k = np.meshgrid(np.arange(rings - 1), np.arange(segs), indexing='ij')
    a, b = i * segs + k, i * segs + (k + 1) % segs
    quads = np.stack([np.stack([a, b, b + segs], -1), np.stack([a, b + segs, a + segs], -1)])
    k = np.arange(segs)
    k1, last = (k + 1) % segs, (rings - 1) * segs
    pole_s, pole_e = np.full(segs, rings * segs), np.full(segs, rings * segs + 1)
    caps = [np.stack([pole_s, k1, k], -1), np.stack([pole_e, last + k, last + k1], -1)]
    faces = np.concatenate([rearrange(quads, 't n m c -> (n m t) c')] + caps)
    return verts, faces, centre_of


def _mirrored(part):
    verts, faces, centres, joints = part
    flip = np.array([-1., 1., 1.])
    joints = tuple(_FLIP.get(j, j) for j in joints)
    return verts * flip, faces[:, ::-1].copy(), centres * flip, joints


def _build_mesh():
    """Vertices, faces, ring centre per vertex, part id per vertex, joints allowed per part."""
    parts = {}
    for name, (spec, joints) in _PARTS.items():
        parts[name] = _tube(*spec) + (joints, )
        if name.startswith('left_'):
            parts['right_' + name[5:]] = _mirrored(parts[name])
    offsets = np.cumsum([0] + [len(parts[n][0]) for n in _ORDER])
    face_lists = [parts[n][1] + offsets[i] for i, n in enumerate(_ORDER)]
    faces = np.concatenate(face_lists)
    verts = np.concatenate([parts[n][0] for n in _ORDER])
    # Join the tubes into one surface: cut the closest pair of faces of two tubes and link
    # the two holes with a 6-triangle prism (V unchanged, F + 4 per bridge).
    face_part = np.concatenate([np.full(len(f), i) for i, f in enumerate(face_lists)])
    centroids = verts[faces].mean(1)
    cut, added = [], []
    for pa, pb in _BRIDGES:
        ia = np.flatnonzero(face_part == _ORDER.index(pa))
        ib = np.flatnonzero(face_part == _ORDER.index(pb))
        dist, nearest = cKDTree(centroids[ib]).query(centroids[ia])
        best = np.argmin(dist)
        fa, fb = faces[ia[best]], faces[ib[nearest[best]]]
        cut += [ia[best], ib[nearest[best]]]
        for i in range(3):
            a0, a1, b0, b1 = fa[i], fa[(i + 1) % 3], fb[-i % 3], fb[-(i + 1) % 3]
            added += [(a0, a1, b1), (a0, b1, b0)]
    faces = np.concatenate([np.delete(faces, cut, axis=0), np.array(added)])
    # Put the end poles of head, hands and toes at HybrIK's leaf vertex ids.
    poles = [offsets[_ORDER.index(n)] + len(parts[n][0]) - 1 for n in _LEAF_POLES]
    order = np.full(NUM_VERTICES, -1)
    order[list(LEAF_VERTEX_IDS)] = poles
    order[order < 0] = np.setdiff1d(np.arange(NUM_VERTICES), poles)
    inverse = np.argsort(order)
    centres = np.concatenate([parts[n][2] for n in _ORDER])[order]
    part_id = np.concatenate([np.full(len(parts[n][0]), i) for i, n in enumerate(_ORDER)])[order]
    allowed = np.zeros((len(_ORDER), 24), dtype=bool)
    for i, n in enumerate(_ORDER):
        allowed[i, list(parts[n][3])] = True
    return verts[order], inverse[faces], centres, part_id, allowed


def _bone_distances(verts):
    """(V, 24) distance of each vertex to the bone(s) each joint rotates."""
    leaf_of = {15: 0, 22: 1, 23: 2, 10: 3, 11: 4}
    dist = np.full((len(verts), 24), np.inf)
    for j in range(24):
        ends = [DESIGN_JOINTS[c] for c in range(24) if SMPL_PARENTS[c] == j]
        for end in ends or [DESIGN_LEAVES[leaf_of[j]]]:
            d = end - DESIGN_JOINTS[j]
            t = np.clip((verts - DESIGN_JOINTS[j]) @ d / (d @ d), 0, 1)
            gap = np.linalg.norm(verts - DESIGN_JOINTS[j] - t[:, None] * d, axis=1)
            dist[:, j] = np.minimum(dist[:, j], gap)
    return dist


def _skinning_weights(dist, mask, tau=.015):
    dist = np.where(mask, dist, np.inf)
    w = np.exp(-(dist - dist.min(1, keepdims=True)) / tau)
    w[w < 1e-3] = 0
    return w / w.sum(1, keepdims=True)


def _regressor(verts, targets, candidates, k=96, penalty=1e4):
    """Rows of nonnegative weights summing to 1 over the k (or 2k, 4k) vertices nearest each
    target (among ``candidates[i]``) with ``rows @ verts == targets``, close to a Gaussian
    falloff with the distance."""
    rows = np.zeros((len(targets), len(verts)))
    for i, (target, cand) in enumerate(zip(targets, candidates)):
        for n in (k, 2 * k, 4 * k):  # widen until the target lies inside the vertices' hull
            dist, near = cKDTree(verts[cand]).query(target, k=n)
            prior = np.exp(-.5 * (dist / np.median(dist))**2)
            constraint = np.concatenate([(verts[cand[near]] - target).T, np.ones((1, n))])
            lhs = np.concatenate([penalty * constraint, np.eye(n)])
            rhs = np.concatenate([penalty * np.array([0., 0., 0., 1.]), prior / prior.sum()])
            w, _ = nnls(lhs, rhs, maxiter=50 * n)
            rows[i] = 0
            rows[i, cand[near]] = w / w.sum()
            miss = np.linalg.norm(rows[i] @ verts - target)
            if miss < 1e-6:
                break
        else:
            raise RuntimeError(f'stand-in regressor row {i} misses its target by {miss:.2e} m')
    return rows


def _smoothstep(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


def _shape_dirs(verts, centres, part_id, rng):
    """(V, 3, 10) displacement (metres) per unit beta."""
    x, y = verts[:, 0], verts[:, 1]
    radial = verts - centres
    side = np.sign(x)
    torso, arm, leg = part_id == 0, np.isin(part_id, (1, 4)), np.isin(part_id, (2, 5))
    lower = np.isin(part_id, (2, 3, 5, 6))
    ey = _E[1]
    dirs = np.zeros((len(verts), 3, NUM_BETAS))
    dirs[..., 0] = .03 * (verts - DESIGN_JOINTS[0]) * np.array([.3, 1., .3])
    girth = np.select([torso, arm, leg], [np.interp(y, [.26, .36], [.10, .02]), .06, .07], .02)
    dirs[..., 1] = girth[:, None] * radial
    dirs[..., 2] = (arm * np.clip(np.abs(x) - .172, 0, None) * side)[:, None] * _E[0] - (
        lower * np.clip(-.31 - y, 0, None))[:, None] * ey
    torso_band = torso * _smoothstep(np.abs(x), .05, .18)
    shoulders = torso_band * _smoothstep(y, .08, .18) * (1 - _smoothstep(y, .26, .32))
    dirs[..., 3] = ((arm + shoulders) * side)[:, None] * _E[0] * .4
    hips = torso_band * (1 - _smoothstep(y, -.2, -.1))
    dirs[..., 4] = ((lower + hips) * side)[:, None] * _E[0] * .3
    dirs[..., 5] = (torso * _smoothstep(y, .34, .40))[:, None] * (verts - (0., .445, .025))
    belly = torso * np.clip(radial[:, 2], 0, None) * np.exp(-.5 * ((y + .05) / .1)**2)
    dirs[..., 6] = belly[:, None] * _E[2]
    dirs[..., 7] = ((torso | arm) * np.clip(y + .22, 0, None))[:, None] * ey
    dirs[..., 8] = (arm | leg)[:, None] * radial
    dirs[..., 9] = (torso * _smoothstep(y, -.05, .05) * (1 - _smoothstep(y, .2, .28)) *
                    radial[:, 2])[:, None] * _E[2]
    amplitude = np.array([1., 1., .03, .03, .03, .08, .2, .03, .05, .1])
    amplitude[2:] *= rng.uniform(.8, 1.2, NUM_BETAS - 2)
    return dirs * amplitude


def build_standin_arrays(seed=0):
    """Return ``(model_arrays, h36m_regressor)``: the 7 SMPL arrays (dict) and the
    (17, 6890) H36M regressor of the stand-in. Same seed, identical arrays."""
    rng = np.random.default_rng(seed)
    verts, faces, centres, part_id, allowed = _build_mesh()
    assert verts.shape == (NUM_VERTICES, 3) and faces.shape == (NUM_FACES, 3)
    weights = _skinning_weights(_bone_distances(verts), allowed[part_id])
    candidates = [np.flatnonzero(allowed[part_id, j]) for j in range(24)]
    j_regressor = _regressor(verts, DESIGN_JOINTS, candidates)
    h36m_as_smpl = [SMPL_JOINT_NAMES.index(n) if n in SMPL_JOINT_NAMES else
                    {'spine': 6, 'thorax': 12, 'neck_nose': 15, 'head_top': 15}[n]
                    for n in H36M_JOINT_NAMES]
    h36m = _regressor(verts, DESIGN_H36M_JOINTS, [candidates[j] for j in h36m_as_smpl])
    # Pose blend shapes: a bulge along the ring normal where a joint and its parent overlap.
    normal = verts - centres
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    overlap = 4 * weights[:, 1:] * weights[:, list(SMPL_PARENTS[1:])]  # (V, 23) in [0, 1]
    coef = rng.uniform(-1, 1, (23, 9)) * .005
    posedirs = rearrange(overlap[:, :, None, None] * coef[None, :, :, None] * normal[:, None, None],
                         'v j e c -> v c (j e)')
    kintree = np.stack([np.array(SMPL_PARENTS, dtype=np.int64), np.arange(24, dtype=np.int64)])
    kintree[0, 0] = 2**32 - 1
    arrays = dict(v_template=verts, f=faces.astype(np.uint32), J_regressor=j_regressor,
                  weights=weights, kintree_table=kintree,
                  shapedirs=_shape_dirs(verts, centres, part_id, rng), posedirs=posedirs)
    return arrays, h36m


_README = """STAND-IN BODY MODEL - NOT SMPL

{model} and {h36m} were generated by unspat-mm (tools/make_body_model.py, seed {seed}).
They are a human-shaped mannequin with SMPL's array layout (6890 vertices, 13776 faces,
24 joints, 10 betas) so that code, tests and demos run without SMPL. They are NOT SMPL:
poses, meshes and metrics computed with them are not SMPL numbers.

For real results get SMPL from https://smpl.is.tue.mpg.de (free research licence), convert
SMPL_NEUTRAL.pkl once with tools/convert_smpl_pkl.py into SMPL_NEUTRAL.npz, and add the
Human3.6M regressor J_regressor_h36m.npy (17 x 6890) from the SPIN/VIBE data.
"""


def make_standin_files(out_dir, seed=0, force=False):
    """Write the neutral stand-in (``SMPL_NEUTRAL_STANDIN.npz``), its H36M regressor
    (``J_regressor_h36m_STANDIN.npy``) and a README into ``out_dir``; returns their paths.

    Raises FileExistsError rather than overwrite existing files unless ``force``.
    """
    names = (STANDIN_MODEL_FILE.format('NEUTRAL'), STANDIN_H36M_FILE, README_FILE)
    paths = [osp.join(out_dir, n) for n in names]
    existing = [p for p in paths if osp.exists(p)]
    if existing and not force:
        raise FileExistsError(f'Refusing to overwrite {", ".join(existing)}; pass --force '
                              '(force=True) to replace them.')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'{out_dir} exists and is not a directory')
    os.makedirs(out_dir, exist_ok=True)
    arrays, h36m = build_standin_arrays(seed)
    # each file appears whole (temporary name, then rename), the model last: a process that
    # finds the model file also finds its regressor (distributed ranks call this at once)
    with open(_temporary(paths[2]), 'w') as f:
        f.write(_README.format(model=names[0], h36m=names[1], seed=seed))
    os.replace(_temporary(paths[2]), paths[2])
    with open(_temporary(paths[1]), 'wb') as f:
        np.save(f, h36m)
    os.replace(_temporary(paths[1]), paths[1])
    with open(_temporary(paths[0]), 'wb') as f:
        np.savez_compressed(f, **arrays)
    os.replace(_temporary(paths[0]), paths[0])
    return paths


def _temporary(path):
    """A per-process temporary name beside ``path``."""
    return f'{path}.{os.getpid()}.tmp'
