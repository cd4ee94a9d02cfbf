"""HybrIK-style mesh head: 3D heatmaps -> keypoints -> twist-swing IK -> SMPL (paper §3.2)."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from unspat_mm.models.utils.rotations import rotation_6d_to_matrix
from unspat_mm.models.utils.twist_swing_ik import twist_angles_from_pose, twist_swing_ik
from unspat_mm.registry import MODELS
from unspat_mm.structures.skeleton import NUM_HYBRIK_JOINTS, NUM_SMPL_JOINTS

from .projection import semi_perspective_projection
from .soft_argmax import soft_argmax_3d

NUM_TWISTS = NUM_SMPL_JOINTS - 1


def _deconv_stack(in_channels: int, channels: Sequence[int], norm_cfg: dict) -> nn.Sequential:
    layers = []
    for out_channels in channels:
        layers += [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1,
                                      bias=False),
                   build_norm_layer(norm_cfg, out_channels)[1], nn.ReLU(inplace=True)]
        in_channels = out_channels
    return nn.Sequential(*layers)


def _mlp(in_channels: int, channels: Sequence[int], dropout: float) -> nn.Sequential:
    layers = []
    for out_channels in channels:
        layers += [nn.Linear(in_channels, out_channels), nn.ReLU(inplace=True),
                   nn.Dropout(dropout)]
        in_channels = out_channels
    return nn.Sequential(*layers)


@MODELS.register_module()
class IKMeshHead(BaseModule):
    """From the encoded middle-frame feature map to the SMPL mesh.

    Keypoints: stride-2 deconvolutions (the paper's three: 8x8 maps -> 64x64
    heatmaps, stride 4 in a 256x256 crop) and a 1x1 convolution give one 3D
    heatmap per keypoint (K=29, ``depth_bins`` x 2^n s x 2^n s for n
    deconvolutions on s x s maps), read out by soft-argmax. The heatmap cube spans ``cube_size`` metres around the root, so
    keypoints come out root-relative in metres, in camera axes (x right, y down,
    z away from the camera).

    Parameters: from the globally pooled feature, an MLP and linear layers give
    the twist (23 x (cos, sin), normalised), beta (10), the camera (s, tx, ty) and
    a per-keypoint sigma (29; in cube units, see :meth:`loss`). Twist-swing IK
    (:func:`~unspat_mm.models.utils.twist_swing_ik`) turns keypoints + twist +
    the rest skeleton of beta into SMPL's theta, and the body model into the mesh.

    Args:
        in_channels: channels of the neck's output (paper: 512).
        body_model: config of the body layer (``SMPLBodyModel``).
        deconv_channels: output channels of the deconvolutions, one per layer
            (paper: three; the CPU default's 4x4 maps of a 64x64 crop need two for
            the paper's heatmap stride of 4).
        norm_cfg: normalisation after each deconvolution (mmcv ``build_norm_layer``;
            e.g. ``dict(type='GN', num_groups=8)`` for results independent of how a
            batch is split across processes).
        depth_bins: heatmap depth resolution (HybrIK: 64).
        fc_channels: hidden widths of the MLP on the pooled feature.
        cube_size: metres spanned by the heatmap cube (HybrIK: 2.2).
        focal: normalised focal length of the semi-perspective camera.
        init_camera_scale: initial s (crop units per metre).
        detach_ik_keypoints: feed the IK a detached copy of the keypoints, as
            HybrIK does: the theta loss then trains the twist and shape branches,
            and the keypoints learn from the keypoint losses alone (through the
            IK, the theta loss's gradient on a far-off keypoint need not point
            towards its target and slows the keypoints' convergence).
        loss_kp3d, loss_kp2d, loss_beta, loss_theta, loss_twist: loss configs
            (eqs. 7-10; weights are the lambdas of eq. 11).
        loss_root: optional auxiliary loss, not in the paper (e.g.
            ``dict(type='Rotation6DLoss', loss_weight=45.)``): a linear layer on
            the pooled feature regresses the global orientation as a raw 6D
            vector (output ``root_6d``; ``root_rotmat`` is its Gram-Schmidt
            matrix), which the loss compares with theta's root. The IK still
            derives the root from the keypoints; the regressor only makes the
            features learn the body's facing early, which a network trained from
            scratch (the CPU default) otherwise picks up from the keypoints'
            depth very slowly. ``None`` (the paper) builds no regressor.
    """

    def __init__(self,
                 in_channels: int,
                 body_model: dict,
                 deconv_channels: Sequence[int] = (256, 256, 256),
                 norm_cfg: dict = dict(type='BN'),
                 depth_bins: int = 64,
                 fc_channels: Sequence[int] = (1024, 1024),
                 dropout: float = 0.5,
                 cube_size: float = 2.2,
                 focal: float = 1000. / 256.,
                 init_camera_scale: float = 0.9 / 2.2,
                 detach_ik_keypoints: bool = True,
                 num_betas: int = 10,
                 loss_kp3d: dict = dict(type='LaplacianKeypointLoss'),
                 loss_kp2d: dict = dict(type='LaplacianKeypointLoss'),
                 loss_beta: dict = dict(type='BetaLoss'),
                 loss_theta: dict = dict(type='ThetaLoss'),
                 loss_twist: dict = dict(type='TwistLoss'),
                 loss_root: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if len(deconv_channels) < 1:
            raise ValueError('IKMeshHead: deconv_channels needs at least one deconvolution '
                             '(paper: three, e.g. (256, 256, 256)); got '
                             f'{tuple(deconv_channels)}.')
        self.depth_bins = depth_bins
        self.cube_size = cube_size
        self.focal = focal
        self.detach_ik_keypoints = detach_ik_keypoints
        self.deconv = _deconv_stack(in_channels, deconv_channels, norm_cfg)
        self.final_conv = nn.Conv2d(deconv_channels[-1], NUM_HYBRIK_JOINTS * depth_bins, 1)
        self.mlp = _mlp(in_channels, fc_channels, dropout)
        hidden = fc_channels[-1] if fc_channels else in_channels
        self.twist_fc = nn.Linear(hidden, NUM_TWISTS * 2)
        self.beta_fc = nn.Linear(hidden, num_betas)
        self.camera_fc = nn.Linear(hidden, 3)
        self.sigma_fc = nn.Linear(hidden, NUM_HYBRIK_JOINTS)
        self._init_regressors(init_camera_scale)
        # built last, so that the other layers start the same with or without it
        self.root_fc = nn.Linear(hidden, 6) if loss_root is not None else None
        self.body_model = MODELS.build(body_model)
        self.loss_kp3d = MODELS.build(loss_kp3d)
        self.loss_kp2d = MODELS.build(loss_kp2d)
        self.loss_beta = MODELS.build(loss_beta)
        self.loss_theta = MODELS.build(loss_theta)
        self.loss_twist = MODELS.build(loss_twist)
        self.loss_root = MODELS.build(loss_root) if loss_root is not None else None

    def _init_regressors(self, init_camera_scale: float) -> None:
        # Start at the mean shape, no twist, a centred camera and sigma ~ 0.1.
        for fc in (self.twist_fc, self.beta_fc, self.camera_fc, self.sigma_fc):
            nn.init.normal_(fc.weight, std=1e-3)
            nn.init.zeros_(fc.bias)
        with torch.no_grad():
            self.twist_fc.bias.view(NUM_TWISTS, 2)[:, 0] = 1.0
            self.camera_fc.bias[0] = float(torch.log(torch.expm1(
                torch.tensor(init_camera_scale))))
            self.sigma_fc.bias.fill_(-2.2)

    def forward(self, feats: Tensor, with_mesh: bool = True) -> Dict[str, Tensor]:
        """Args:
            feats: (B, C, h, w) encoded middle-frame features.
            with_mesh: run the body model too; the losses need only the IK's
                rotations, so training skips the mesh (a tenth of a CPU step).

        Returns:
            dict of tensors: ``keypoints3d`` (B, 29, 3) root-relative metres,
            ``keypoints2d`` (B, 29, 2) normalised crop coordinates, ``sigma``
            (B, 29) in cube units, ``twist`` (B, 23, 2), ``betas`` (B, 10),
            ``camera`` (B, 3) (s, tx, ty), ``rotmats`` (B, 24, 3, 3), ``theta``
            (B, 72) axis-angle radians, and (``with_mesh``) the body model's
            ``vertices`` (B, 6890, 3), ``joints24``, ``joints29``, ``joints17``,
            ``joints14`` in metres; with ``loss_root``, also the auxiliary
            regressor's global orientation, raw ``root_6d`` (B, 6) and
            ``root_rotmat`` (B, 3, 3).
        """
        heatmaps = rearrange(self.final_conv(self.deconv(feats)), 'b (k d) h w -> b k d h w',
                             k=NUM_HYBRIK_JOINTS)
        keypoints3d = soft_argmax_3d(heatmaps) * self.cube_size
        keypoints3d = keypoints3d - keypoints3d[:, :1]

        pooled = self.mlp(feats.mean(dim=(2, 3)))
        twist = F.normalize(rearrange(self.twist_fc(pooled), 'b (j c) -> b j c', c=2), dim=-1,
                            eps=1e-6)
        betas = self.beta_fc(pooled)
        raw_camera = self.camera_fc(pooled)
        camera = torch.cat([F.softplus(raw_camera[:, :1]), raw_camera[:, 1:]], dim=1)
        sigma = torch.sigmoid(self.sigma_fc(pooled)) + 1e-4

        outputs = dict(keypoints3d=keypoints3d,
                       keypoints2d=semi_perspective_projection(keypoints3d, camera, self.focal),
                       sigma=sigma, twist=twist, betas=betas, camera=camera,
                       **self.mesh_from_keypoints(keypoints3d, twist, betas, with_mesh))
        if self.root_fc is not None:
            outputs['root_6d'] = self.root_fc(pooled)
            outputs['root_rotmat'] = rotation_6d_to_matrix(outputs['root_6d'])
        return outputs

    def mesh_from_keypoints(self, keypoints3d: Tensor, twist: Tensor, betas: Tensor,
                            with_mesh: bool = True) -> Dict[str, Tensor]:
        """Twist-swing IK on the rest skeleton of ``betas``, then the body model.

        Args:
            keypoints3d: (B, 29, 3) root-relative keypoints, metres.
            twist: (B, 23, 2) (cos, sin) of the twist angles.
            betas: (B, 10) shape coefficients.
            with_mesh: also run the body model.

        Returns:
            dict: ``rotmats`` (B, 24, 3, 3), ``theta`` (B, 72) and (``with_mesh``)
            the body model's ``vertices``/``joints24``/``joints29``/``joints17``/
            ``joints14`` (metres).
        """
        if self.detach_ik_keypoints:
            keypoints3d = keypoints3d.detach()
        rest = self.body_model.rest_joints29(betas)
        rotmats, theta = twist_swing_ik(keypoints3d, twist, rest)
        mesh = self.body_model(rotmats, betas) if with_mesh else {}
        return dict(rotmats=rotmats, theta=theta, **mesh)

    def loss(self, outputs: Dict[str, Tensor], targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Eqs. 7-10 with per-sample validity.

        Args:
            outputs: :meth:`forward`'s dict.
            targets: stacked ground truth of the middle frames:
                ``keypoints3d`` (B, 29, 3) root-relative metres and its
                ``keypoints3d_valid`` (B, 29); ``keypoints2d`` (B, 29, 2) normalised
                crop coordinates and ``keypoints2d_valid`` (B, 29); ``theta`` (B, 72),
                ``betas`` (B, 10) and ``smpl_valid`` (B,). Invalid entries may hold
                anything (NaN included): they contribute neither value nor gradient.

        With ``loss_root``, ``loss_root`` compares the raw ``root_6d`` with
        theta's root (masked like the other SMPL terms).

        Keypoint terms compare in cube units (metres / ``cube_size``) so that the 3D
        and the 2D term, which share sigma (eq. 8), have comparable scales.
        """
        smpl_valid = targets['smpl_valid'].float()
        # The twist target comes from the ground-truth pose about the rest bones of
        # the ground-truth shape; invalid samples get a harmless stand-in pose.
        safe_theta = torch.where(smpl_valid[:, None] > 0, targets['theta'],
                                 torch.zeros_like(targets['theta']))
        safe_betas = torch.where(smpl_valid[:, None] > 0, targets['betas'],
                                 torch.zeros_like(targets['betas']))
        with torch.no_grad():
            gt_twist = twist_angles_from_pose(safe_theta,
                                              self.body_model.rest_joints29(safe_betas))
        losses = dict(
            loss_kp3d=self.loss_kp3d(outputs['keypoints3d'] / self.cube_size, outputs['sigma'],
                                     targets['keypoints3d'] / self.cube_size,
                                     targets['keypoints3d_valid']),
            loss_kp2d=self.loss_kp2d(outputs['keypoints2d'], outputs['sigma'],
                                     targets['keypoints2d'], targets['keypoints2d_valid']),
            loss_beta=self.loss_beta(outputs['betas'], targets['betas'], smpl_valid),
            loss_theta=self.loss_theta(outputs['rotmats'], targets['theta'], smpl_valid),
            loss_twist=self.loss_twist(outputs['twist'], gt_twist, smpl_valid))
        if self.loss_root is not None:
            losses['loss_root'] = self.loss_root(outputs['root_6d'], targets['theta'][:, :3],
                                                 smpl_valid)
        return losses
