"""RandomVideoFlip: an involution that mirrors images, boxes, joints, SMPL pose and camera
consistently (numbers against the body model and the IK, not shapes)."""
import numpy as np
import pytest
import torch
from einops import rearrange
from scipy.spatial import cKDTree

from unspat_mm.datasets.synthetic.camera import project
from unspat_mm.datasets.synthetic.standin_body import DESIGN_JOINTS, DESIGN_LEAVES
from unspat_mm.datasets.transforms import (RandomVideoFlip, VideoBBoxCrop, flip_joints,
                                           flip_permutation, flip_smpl_pose, flip_twist)
from unspat_mm.models.body import SMPLBodyModel
from unspat_mm.models.utils.rotations import axis_angle_to_matrix
from unspat_mm.models.utils.twist_swing_ik import forward_kinematics, twist_angles_from_pose
from unspat_mm.registry import TRANSFORMS
from unspat_mm.structures.skeleton import (H36M_FLIP_PAIRS, H36M_JOINT_NAMES, HYBRIK_FLIP_PAIRS,
                                           HYBRIK_JOINT_NAMES, J14_FLIP_PAIRS, J14_JOINT_NAMES,
                                           SMPL_FLIP_PAIRS)

T, H, W = 4, 48, 64
HIP_L, HIP_R = HYBRIK_JOINT_NAMES.index('left_hip'), HYBRIK_JOINT_NAMES.index('right_hip')
# an exactly mirror-symmetric rest skeleton (the stand-in's design, right = mirrored left)
SYMMETRIC_REST = torch.tensor(np.concatenate([DESIGN_JOINTS, DESIGN_LEAVES]))[None]


def _window(seed=0):
    """Every key the flip knows; keypoints2d is the projection of keypoints3d_cam with
    cam_intrinsics (with a skew)."""
    rng = np.random.default_rng(seed)
    cam = rng.normal(0, .4, (T, 29, 3)) + np.array([0., 0., 5.])
    intr = np.array([[90., 3., 30.], [0., 95., 22.], [0., 0., 1.]])
    kp2d = np.einsum('ij,tkj->tki', intr, cam)
    kp3d = cam - cam[:, :1]
    hip14 = rng.normal(size=(T, 14, 3))
    return dict(
        imgs=rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8),
        bbox=rng.uniform(5, 40, (T, 4)).astype(np.float32), bbox_gt=rng.uniform(5, 40, (T, 4)),
        keypoints2d=(kp2d[..., :2] / kp2d[..., 2:]).astype(np.float32),
        keypoints2d_valid=rng.integers(0, 2, (T, 29)).astype(np.float32),
        keypoints3d=kp3d.astype(np.float32), keypoints3d_valid=rng.integers(0, 2, (T, 29)) * 1.,
        keypoints3d_cam=cam, cam_intrinsics=np.repeat(intr[None], T, 0),
        focal=np.full(T, 90.), principal=np.repeat([[30., 22.]], T, 0),
        gt_joints14=hip14 - hip14[:, 2:4].mean(1, keepdims=True),
        gt_joints17=rng.normal(size=(T, 17, 3)),
        theta=rng.normal(0, .5, (T, 72)).astype(np.float32),
        twist=rng.uniform(-np.pi, np.pi, (T, 23)), transl=rng.normal(size=(T, 3)),
        occluder_mask=rng.uniform(size=(T, H, W)) < .3,
        person_mask=rng.uniform(size=(T, H, W)) < .5,
        betas=rng.normal(size=(T, 10)), smpl_valid=np.ones(T), sequence_id='s', frame_index=3,
        center_index=T // 2, occluded_frames=np.zeros(T, bool), rng=np.random.default_rng(seed))


def _fk(theta):
    rotmats = axis_angle_to_matrix(rearrange(torch.as_tensor(theta, dtype=torch.float64),
                                             'b (j c) -> b j c', c=3))
    return forward_kinematics(rotmats, SYMMETRIC_REST)[0].numpy()


def test_flip_twice_is_the_identity():
    res = _window()
    out = RandomVideoFlip(prob=1.)(RandomVideoFlip(prob=1.)({**res}))
    assert out['flipped'] is False
    for key, value in res.items():
        if isinstance(value, np.ndarray):
            assert out[key].dtype == value.dtype and out[key].shape == value.shape, key
            np.testing.assert_allclose(out[key], value, atol=1e-6, err_msg=key)
    # theta as rotations too (exact: every component is negated twice or not at all)
    rot = axis_angle_to_matrix(torch.as_tensor(rearrange(out['theta'], 't (j c) -> t j c', c=3)))
    ref = axis_angle_to_matrix(torch.as_tensor(rearrange(res['theta'], 't (j c) -> t j c', c=3)))
    torch.testing.assert_close(rot, ref, atol=1e-6, rtol=0)


def test_one_flip_mirrors_every_key():
    res = _window()
    out = RandomVideoFlip(prob=1.)({**res})
    assert out['flipped'] is True
    np.testing.assert_array_equal(out['imgs'][:, 5, W - 1 - 7], res['imgs'][:, 5, 7])
    np.testing.assert_array_equal(out['person_mask'], res['person_mask'][:, :, ::-1])
    for key in ('bbox', 'bbox_gt'):
        np.testing.assert_allclose(out[key][:, 0], W - res[key][:, 0], rtol=1e-6)
        np.testing.assert_array_equal(out[key][:, 1:], res[key][:, 1:])
    # left hip <- mirrored right hip, in pixels, in metres and in the validity flags
    np.testing.assert_allclose(out['keypoints2d'][:, HIP_L],
                               np.c_[W - res['keypoints2d'][:, HIP_R, 0],
                                     res['keypoints2d'][:, HIP_R, 1]], rtol=1e-6)
    np.testing.assert_allclose(out['keypoints3d'][:, HIP_L],
                               res['keypoints3d'][:, HIP_R] * [-1, 1, 1], rtol=1e-6)
    np.testing.assert_array_equal(out['keypoints2d_valid'][:, [HIP_L, HIP_R]],
                                  res['keypoints2d_valid'][:, [HIP_R, HIP_L]])
    np.testing.assert_array_equal(out['keypoints3d'][:, 0], 0.)  # still root-relative
    # J14 / H36M order: the evaluation joint sets use their own pairs
    for key, names in (('gt_joints14', J14_JOINT_NAMES), ('gt_joints17', H36M_JOINT_NAMES)):
        left, right = names.index('left_wrist'), names.index('right_wrist')
        np.testing.assert_allclose(out[key][:, left], res[key][:, right] * [-1, 1, 1])
    np.testing.assert_allclose(out['gt_joints14'][:, 2:4].mean(1), 0., atol=1e-12)
    # SMPL pose: the global orientation stays joint 0, (x, y, z) -> (x, -y, -z)
    th, th0 = out['theta'].reshape(T, 24, 3), res['theta'].reshape(T, 24, 3)
    np.testing.assert_allclose(th[:, 0], th0[:, 0] * [1, -1, -1])
    np.testing.assert_allclose(th[:, 18], th0[:, 19] * [1, -1, -1])  # left <- right elbow
    np.testing.assert_allclose(out['twist'][:, 17], -res['twist'][:, 18])  # same, twist index
    np.testing.assert_allclose(out['transl'], res['transl'] * [-1, 1, 1])
    np.testing.assert_array_equal(out['betas'], res['betas'])
    # the camera follows: projecting the mirrored 3D points gives the mirrored 2D points
    proj = np.einsum('tij,tkj->tki', out['cam_intrinsics'], out['keypoints3d_cam'])
    np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], out['keypoints2d'], atol=1e-4)
    # and with focal/principal (no skew): u -> W - u, joints swapped
    expected = flip_joints(project(res['keypoints3d_cam'], res['focal'], res['principal']),
                           HYBRIK_FLIP_PAIRS, W)
    np.testing.assert_allclose(project(out['keypoints3d_cam'], out['focal'], out['principal']),
                               expected, atol=1e-9)


def test_flipped_image_and_keypoints_agree_after_the_crop():
    """A dot drawn at a joint is found, after flip + crop, where the flipped and cropped
    keypoint of the mirrored joint says (pure translation, then a 2x zoom)."""
    joint = HYBRIK_JOINT_NAMES.index('left_wrist')
    mirrored = HYBRIK_JOINT_NAMES.index('right_wrist')
    res = _window()
    res['imgs'] = np.zeros_like(res['imgs'])
    px = np.array([[20, 30], [21, 29], [22, 28], [23, 27]])  # a pixel per frame
    res['keypoints2d'][:, joint] = px + .5  # the pixel centres
    res['imgs'][np.arange(T), px[:, 1], px[:, 0]] = 255
    res['bbox'] = np.repeat([[32., 24., 40., 30.]], T, 0)  # integer crop offsets
    flipped = RandomVideoFlip(prob=1.)(res)
    assert flipped['imgs'][np.arange(T), px[:, 1], W - 1 - px[:, 0]].all()
    for size in ((40, 30), (80, 60)):
        out = VideoBBoxCrop(input_size=size)({k: np.copy(v) if isinstance(v, np.ndarray) else v
                                              for k, v in flipped.items()})
        kp = out['keypoints2d'][:, mirrored]
        for t in range(T):
            weights = out['imgs'][t, ..., 0].astype(np.float64)
            ys, xs = np.mgrid[:size[1], :size[0]] + .5
            centroid = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
            np.testing.assert_allclose(centroid, kp[t], atol=.02)
            if size == (40, 30):
                assert out['imgs'][t, int(kp[t, 1]), int(kp[t, 0]), 0] == 255


def test_smpl_pose_flip_matches_the_joint_flip():
    """FK of the flipped pose on a mirror-symmetric skeleton = mirrored, swapped joints;
    the two plausible wrong rules (swap only; swap and negate x) are far off."""
    theta = np.random.default_rng(1).normal(0, .6, (64, 72))
    mirrored = flip_joints(_fk(theta), HYBRIK_FLIP_PAIRS)
    np.testing.assert_allclose(_fk(flip_smpl_pose(theta)), mirrored, atol=1e-6)
    swap = rearrange(theta, 'b (j c) -> b j c', c=3)[:, flip_permutation(24, SMPL_FLIP_PAIRS)]
    for wrong in (swap, swap * [-1, 1, 1]):
        assert np.abs(_fk(rearrange(wrong, 'b j c -> b (j c)')) - mirrored).max() > .5


def test_smpl_pose_flip_on_the_standin_body_model(standin_model_dir):
    """Measured on the stand-in (betas 0; its template, skinning weights and J_regressor
    output are mirror-symmetric): joints24/29 of the flipped pose equal the mirrored joints to
    float32 precision (3e-7 m). Its vertices differ by up to ~2 cm only through its seeded,
    asymmetric pose blend shapes: with posedirs zeroed they agree to 1e-6 m (the stand-in's
    H36M regressor rows of pelvis and neck_nose are not mirror-symmetric either: joints17
    are ~6 mm off with posedirs, 1.5 mm without)."""
    body = SMPLBodyModel(standin_model_dir)
    theta = torch.as_tensor(np.random.default_rng(2).normal(0, .5, (16, 72)))
    flipped = torch.as_tensor(flip_smpl_pose(theta.numpy()))
    betas = torch.zeros(16, 10)
    out, out_f = body(theta, betas), body(flipped, betas)
    for key, pairs in (('joints24', SMPL_FLIP_PAIRS), ('joints29', HYBRIK_FLIP_PAIRS)):
        np.testing.assert_allclose(out_f[key].numpy(), flip_joints(out[key].numpy(), pairs),
                                   atol=1e-6)
    template = body.smpl.v_template.numpy()
    dist, mirror_ids = cKDTree(template).query(template * [-1, 1, 1])
    assert dist.max() < 1e-6  # the template is symmetric: a vertex-to-vertex mirror map
    vertex_gap = np.abs((out['vertices'].numpy() * [-1, 1, 1])[:, mirror_ids]
                        - out_f['vertices'].numpy()).max()
    assert 1e-3 < vertex_gap < .05  # the asymmetric pose blend shapes (see docstring)
    body.smpl.posedirs.zero_()
    out, out_f = body(theta, betas), body(flipped, betas)
    np.testing.assert_allclose((out['vertices'].numpy() * [-1, 1, 1])[:, mirror_ids],
                               out_f['vertices'].numpy(), atol=1e-6)


def test_twist_flip_matches_the_ik(standin_model_dir):
    """twist(flip(theta)) = flip_twist(twist(theta)): swapped and negated (the mirror turns
    a rotation about t by phi into one about M t by -phi), on the symmetric skeleton and on
    the stand-in's rest skeleton; (cos, sin) twists flip the sine."""
    theta = np.random.default_rng(3).normal(0, .6, (64, 72))
    rest_standin = SMPLBodyModel(standin_model_dir).rest_joints29(torch.zeros(1, 10)).double()
    for rest in (SYMMETRIC_REST, rest_standin):
        phi = twist_angles_from_pose(torch.as_tensor(theta), rest).numpy()
        phi_f = twist_angles_from_pose(torch.as_tensor(flip_smpl_pose(theta)), rest).numpy()
        gap = np.angle(np.exp(1j * (flip_twist(phi) - phi_f)))
        assert np.abs(gap).max() < 1e-5
        assert np.abs(np.angle(np.exp(1j * (-flip_twist(phi) - phi_f)))).max() > 1.
        cos_sin = np.stack([np.cos(phi), np.sin(phi)], -1)
        np.testing.assert_allclose(flip_twist(cos_sin),
                                   np.stack([np.cos(phi_f), np.sin(phi_f)], -1), atol=1e-5)


def test_randomness_comes_from_the_rng():
    flip = TRANSFORMS.build(dict(type='RandomVideoFlip', prob=.5))
    decisions = []
    for seed in range(200):
        a, b = flip(_window(seed)), flip(_window(seed))
        np.testing.assert_array_equal(a['imgs'], b['imgs'])
        assert a['flipped'] == b['flipped']
        decisions.append(a['flipped'])
    assert 80 < sum(decisions) < 120
    for seed in range(20):
        res = _window(seed)
        never = RandomVideoFlip(prob=0.)({**res})
        assert never['flipped'] is False and never['imgs'] is res['imgs']
        assert RandomVideoFlip(prob=1.)({**res})['flipped'] is True


def test_pair_tables_follow_the_names():
    for names, pairs in ((J14_JOINT_NAMES, J14_FLIP_PAIRS), (H36M_JOINT_NAMES, H36M_FLIP_PAIRS),
                         (HYBRIK_JOINT_NAMES, HYBRIK_FLIP_PAIRS)):
        perm = flip_permutation(len(names), pairs)
        swapped = [n.replace('left', 'L').replace('right', 'left').replace('L', 'right')
                   for n in names]
        assert [names[i] for i in perm] == swapped
    assert len(J14_FLIP_PAIRS) == 6 and len(H36M_FLIP_PAIRS) == 6


def test_bad_input_gives_clear_errors():
    flip = RandomVideoFlip(prob=1.)
    res = _window()
    res['joints24'] = np.zeros((T, 24, 3))
    with pytest.raises(KeyError, match="mirror results\\['joints24'\\].*ignore_keys"):
        flip(res)
    # it is an error even when this window is not flipped (never silently unflipped)
    with pytest.raises(KeyError, match='joints24'):
        RandomVideoFlip(prob=1e-9)({**res})
    res.pop('joints24')
    res['note_text'] = 'not geometric'  # unknown, non-geometric names pass through
    assert RandomVideoFlip(prob=1., ignore_keys=('vertices', ))({**res, 'vertices': 1})
    bad = (('keypoints2d', np.zeros((T, 17, 2)), 'keypoint_flip_pairs'),
           ('theta', np.zeros((T, 69)), '72'),
           ('twist', np.zeros((T, 24)), 'cos, sin'),
           ('bbox', np.zeros((T + 1, 4)), 'bbox'),
           ('person_mask', np.zeros((T, H, W - 1), bool), 'person_mask'),
           ('keypoints3d_valid', np.zeros((T, 28)), 'keypoints3d_valid'))
    for key, value, match in bad:
        with pytest.raises(ValueError, match=match):
            flip({**res, key: value})
    with pytest.raises(ValueError, match='before VideoBBoxCrop'):
        flip({**res, 'crop_affine': np.zeros((T, 2, 3))})
    with pytest.raises(ValueError, match='LoadVideoFrames'):
        flip({**res, 'imgs': np.zeros((H, W, 3), np.uint8)})
    with pytest.raises(KeyError, match='rng'):
        RandomVideoFlip(prob=.5)({k: v for k, v in res.items() if k != 'rng'})
    with pytest.raises(ValueError, match='prob'):
        RandomVideoFlip(prob=1.5)
    # another skeleton: pass its pairs
    custom = RandomVideoFlip(prob=1., keypoint_flip_pairs=((0, 1), ))
    kp = np.arange(T * 3 * 2, dtype=np.float32).reshape(T, 3, 2)
    out = custom({'imgs': res['imgs'], 'keypoints2d': kp, 'rng': np.random.default_rng(0)})
    np.testing.assert_allclose(out['keypoints2d'][:, 0], np.c_[W - kp[:, 1, 0], kp[:, 1, 1]])


def test_on_the_synthetic_dataset(synthetic_tiny, standin_model_dir, tiny_settings, body_model):
    """Every key the synthetic set yields is handled; the flipped labels stay consistent:
    2D = projection of the camera-frame 3D joints, 3D = the body model's joints of the
    flipped theta (up to the stand-in's shape asymmetry at its betas, < 2 mm)."""
    from unspat_mm.registry import DATASETS
    ds = DATASETS.build(dict(
        type='SyntheticVideoDataset', split='val', cache_dir=synthetic_tiny[0],
        body_model_dir=standin_model_dir, settings=tiny_settings, num_frames=4, with_masks=True,
        pipeline=[dict(type='LoadVideoFrames'), dict(type='RandomVideoFlip', prob=1.)]))
    out = ds[3]
    assert out['flipped'] is True
    np.testing.assert_allclose(
        project(out['keypoints3d_cam'], out['focal'], out['principal']), out['keypoints2d'],
        atol=1e-3)
    body = body_model(torch.as_tensor(out['theta']), torch.as_tensor(out['betas']).float())
    joints = body['joints29'].double().numpy()
    np.testing.assert_allclose(joints - joints[:, :1], out['keypoints3d'], atol=2e-3)
    plain = ds.get_data_info(3)
    np.testing.assert_array_equal(out['person_mask'], plain['person_mask'][:, :, ::-1])
