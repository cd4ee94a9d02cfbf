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
from unspat_mm.structures.skeleton import NUM_HYBRIK_JOINTS, NUM_SMPL_JOINTS, ROOT_CHILDREN

from .hybrik_convention import HYBRIK_INIT_CAM, uvd_to_camera
from .projection import semi_perspective_projection
from .soft_argmax import soft_argmax_3d

NUM_TWISTS = NUM_SMPL_JOINTS - 1
CONVENTIONS = ('xyz', 'hybrik')


def _deconv_stack(in_channels: int, channels: Sequence[int], norm_cfg: dict) -> nn.Sequential:
    layers = []
    for out_channels in channels:
        layers += [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1,
                                      bias=False),
                   build_norm_layer(norm_cfg, out_channels)[1], nn.ReLU(inplace=True)]
        in_channels = out_channels
    return nn.Sequential(*layers)


def _mlp(in_channels: int, channels: Sequence[int], dropout: float,
         activation: bool = True) -> nn.Sequential:
    """Linear (+ ReLU) + dropout per width; HybrIK's MLP has no activation."""
    layers = []
    for out_channels in channels:
        layers += [nn.Linear(in_channels, out_channels)]
        layers += [nn.ReLU(inplace=True)] if activation else []
        layers += [nn.Dropout(dropout)]
        in_channels = out_channels
    return nn.Sequential(*layers)


@MODELS.register_module()
class IKMeshHead(BaseModule):
    """From the encoded middle-frame feature map to the SMPL mesh (paper §3.2).

    Keypoints: stride-2 deconvolutions (the paper's three: 8x8 maps -> 64x64
    heatmaps, stride 4 in a 256x256 crop) and a 1x1 convolution give one 3D
    heatmap per keypoint (K=29, ``depth_bins`` x 2^n s x 2^n s for n
    deconvolutions on s x s maps), read out by soft-argmax. Keypoints come out
    root-relative in metres, in camera axes (x right, y down, z away from the
    camera).

    Parameters: from the globally pooled feature, an MLP and linear layers give
    the twist (23 x (cos, sin), normalised), beta (10), the camera (s, tx, ty) and
    a per-keypoint sigma (29; in cube units, see :meth:`loss`). Twist-swing IK
    (:func:`~unspat_mm.models.utils.twist_swing_ik`) turns keypoints + twist +
    the rest skeleton of beta into SMPL's theta, and the body model into the mesh.

    ``convention`` says what the heatmaps and the regressors mean:

    * ``'xyz'``: the heatmap cube spans ``cube_size`` metres around the root in
      camera axes (cells read at their centres); the MLP has ReLUs; the camera
      scale is a softplus (starting at ``init_camera_scale``), sigma is
      ``sigmoid + 1e-4``. The embedded default's head.
    * ``'hybrik'``: HybrIK's ResNet-34 SMPL-with-camera head (the paper initialises
      its regressor from it; see :mod:`.hybrik_convention` and
      ``tools/model_converters/hybrik_to_unspat.py``): uvd heatmaps (u, v
      image-aligned crop coordinates, d the root-relative depth in units of
      ``cube_size``, HybrIK's depth factor 2.2 m; cell i of n at ``i / n - 0.5``),
      an MLP without activations (``fc_channels=(1024, 1024)``: HybrIK's
      fc1/fc2), ``betas = decshape + init_shape``, ``camera = deccam +
      init_cam``, ``sigma = sigmoid(decsigma)`` (floored at 1e-4 for eq. 7's
      log). The keypoints are HybrIK's back-projection of uvd with the predicted
      camera (:func:`~.hybrik_convention.uvd_to_camera`), root-centred.
      Extra output ``uvd``; extra buffers ``init_shape`` (10,) and ``init_cam``
      (3,), which HybrIK's checkpoints fill.

    In both, ``keypoints2d`` is the semi-perspective projection of the
    root-relative keypoints with the predicted camera (eq. 8).

    Args:
        in_channels (int): channels of the neck's output (paper: 512).
        body_model (dict): config of the body layer (``SMPLBodyModel``).
        convention (str): ``'xyz'`` or ``'hybrik'``, see above. Defaults to ``'xyz'``.
        deconv_channels (Sequence[int]): output channels of the deconvolutions, one
            per layer (paper: three; the CPU default's 4x4 maps of a 64x64 crop need
            two for the paper's heatmap stride of 4). Defaults to (256, 256, 256).
        norm_cfg (dict): normalisation after each deconvolution (mmcv
            ``build_norm_layer``; e.g. ``dict(type='GN', num_groups=8)`` for results
            independent of how a batch is split across processes).
            Defaults to ``dict(type='BN')``.
        depth_bins (int): heatmap depth resolution (HybrIK: 64). Defaults to 64.
        fc_channels (Sequence[int]): hidden widths of the MLP on the pooled feature
            (HybrIK: (1024, 1024)). Defaults to (1024, 1024).
        dropout (float): dropout after each MLP layer (HybrIK: 0.5). Defaults to 0.5.
        cube_size (float): metres spanned by the heatmap cube, or by HybrIK's d
            (its depth factor, 2.2). Defaults to 2.2.
        focal (float): normalised focal length of the semi-perspective camera
            (focal length in px / crop size in px; HybrIK: 1000 / 256).
            Defaults to 1000 / 256.
        init_camera_scale (float): ``'xyz'`` only: initial s (crop units per
            metre). Defaults to 0.9 / 2.2.
        init_cam (Sequence[float]): ``'hybrik'`` only: the ``init_cam`` buffer,
            (s, tx, ty) added to the camera regressor. Defaults to
            ``HYBRIK_INIT_CAM`` = (0.9, 0.0, 0.0).
        detach_ik_keypoints (bool): feed the IK a detached copy of the keypoints,
            as HybrIK does: the theta loss then trains the twist and shape branches,
            and the keypoints learn from the keypoint losses alone (through the IK,
            the theta loss's gradient on a far-off keypoint need not point towards
            its target and slows the keypoints' convergence). Defaults to True.
        ik_root_weights (str): how the IK's root fit (a weighted Kabsch fit of the
            pelvis and its three children, :func:`~unspat_mm.models.utils.root_rotation`)
            weighs the children: ``'sigma'`` by ``1 / sigma^2`` of the predicted
            keypoints (detached: sigma stays a calibrated uncertainty), ``'equal'``
            equally. Defaults to ``'sigma'``.
        num_betas (int): shape coefficients. Defaults to 10.
        loss_kp3d, loss_kp2d, loss_beta, loss_theta, loss_twist (dict): loss
            configs (eqs. 7-10; weights are the lambdas of eq. 11). Defaults to
            ``dict(type='LaplacianKeypointLoss')`` (``loss_kp3d``, ``loss_kp2d``),
            ``dict(type='BetaLoss')``, ``dict(type='ThetaLoss')`` and
            ``dict(type='TwistLoss')``.
        loss_root (dict, optional): auxiliary loss, not in the paper (e.g.
            ``dict(type='Rotation6DLoss', loss_weight=45.)``): a linear layer on
            the pooled feature regresses the global orientation as a raw 6D
            vector (output ``root_6d``; ``root_rotmat`` is its Gram-Schmidt
            matrix), which the loss compares with theta's root. The IK still
            derives the root from the keypoints; the regressor only makes the
            features learn the body's facing early, which a network trained from
            scratch (the CPU default) otherwise picks up from the keypoints'
            depth very slowly. Defaults to ``None`` (the paper): no regressor.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 body_model: dict,
                 convention: str = 'xyz',
                 deconv_channels: Sequence[int] = (256, 256, 256),
                 norm_cfg: dict = dict(type='BN'),
                 depth_bins: int = 64,
                 fc_channels: Sequence[int] = (1024, 1024),
                 dropout: float = 0.5,
                 cube_size: float = 2.2,
                 focal: float = 1000. / 256.,
                 init_camera_scale: float = 0.9 / 2.2,
                 init_cam: Sequence[float] = HYBRIK_INIT_CAM,
                 detach_ik_keypoints: bool = True,
                 ik_root_weights: str = 'sigma',
                 num_betas: int = 10,
                 loss_kp3d: dict = dict(type='LaplacianKeypointLoss'),
                 loss_kp2d: dict = dict(type='LaplacianKeypointLoss'),
                 loss_beta: dict = dict(type='BetaLoss'),
                 loss_theta: dict = dict(type='ThetaLoss'),
                 loss_twist: dict = dict(type='TwistLoss'),
                 loss_root: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if convention not in CONVENTIONS:
            raise ValueError(f'IKMeshHead: convention must be one of {CONVENTIONS}, got '
                             f'{convention!r}.')
        if len(deconv_channels) < 1:
            raise ValueError('IKMeshHead: deconv_channels needs at least one deconvolution '
                             '(paper: three, e.g. (256, 256, 256)); got '
                             f'{tuple(deconv_channels)}.')
        if ik_root_weights not in ('sigma', 'equal'):
            raise ValueError("IKMeshHead: ik_root_weights must be 'sigma' or 'equal', got "
                             f'{ik_root_weights!r}.')
        if convention == 'hybrik' and len(tuple(init_cam)) != 3:
            raise ValueError(f'IKMeshHead: init_cam is (s, tx, ty), got {tuple(init_cam)}.')
        self.convention = convention
        self.hybrik = convention == 'hybrik'
        self.depth_bins = depth_bins
        self.cube_size = cube_size
        self.focal = focal
        self.detach_ik_keypoints = detach_ik_keypoints
        self.ik_root_weights = ik_root_weights
        self.deconv = _deconv_stack(in_channels, deconv_channels, norm_cfg)
        self.final_conv = nn.Conv2d(deconv_channels[-1], NUM_HYBRIK_JOINTS * depth_bins, 1)
        self.mlp = _mlp(in_channels, fc_channels, dropout, activation=not self.hybrik)
        hidden = fc_channels[-1] if fc_channels else in_channels
        self.twist_fc = nn.Linear(hidden, NUM_TWISTS * 2)
        self.beta_fc = nn.Linear(hidden, num_betas)
        self.camera_fc = nn.Linear(hidden, 3)
        self.sigma_fc = nn.Linear(hidden, NUM_HYBRIK_JOINTS)
        if self.hybrik:  # HybrIK's buffers, filled by its checkpoints
            self.register_buffer('init_shape', torch.zeros(num_betas))
            self.register_buffer('init_cam', torch.tensor([float(c) for c in init_cam]))
            self._init_hybrik_heatmap_layers()
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

    def _init_hybrik_heatmap_layers(self) -> None:
        # HybrIK's initialisation of a fresh heatmap branch
        for m in self.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=1e-3)
        nn.init.normal_(self.final_conv.weight, std=1e-3)
        nn.init.zeros_(self.final_conv.bias)

    def _init_regressors(self, init_camera_scale: float) -> None:
        # Start at the mean shape, no twist, a centred camera and sigma ~ 0.1 ('hybrik':
        # the camera at init_cam, the shape at init_shape).
        for fc in (self.twist_fc, self.beta_fc, self.camera_fc, self.sigma_fc):
            nn.init.normal_(fc.weight, std=1e-3)
            nn.init.zeros_(fc.bias)
        with torch.no_grad():
            self.twist_fc.bias.view(NUM_TWISTS, 2)[:, 0] = 1.0
            if not self.hybrik:
                self.camera_fc.bias[0] = float(torch.log(torch.expm1(
                    torch.tensor(init_camera_scale))))
            self.sigma_fc.bias.fill_(-2.2)

    def forward(self, feats: Tensor, with_mesh: bool = True) -> Dict[str, Tensor]:
        """Heatmaps and regressors, then the IK and (``with_mesh``) the body model.

        Args:
            feats (Tensor): (B, C, h, w) encoded middle-frame features.
            with_mesh (bool): run the body model too; the losses need only the IK's
                rotations, so training skips the mesh. Defaults to True.

        Returns:
            dict: ``keypoints3d`` (B, 29, 3) root-relative metres,
            ``keypoints2d`` (B, 29, 2) normalised crop coordinates, ``sigma``
            (B, 29) in cube units, ``twist`` (B, 23, 2), ``betas`` (B, 10),
            ``camera`` (B, 3) (s, tx, ty), ``rotmats`` (B, 24, 3, 3), ``theta``
            (B, 72) axis-angle radians, and (``with_mesh``) the body model's
            ``vertices`` (B, 6890, 3), ``joints24``, ``joints29``, ``joints17``,
            ``joints14`` in metres; ``'hybrik'`` also ``uvd`` (B, 29, 3) (see the
            class docstring); with ``loss_root``, also the auxiliary regressor's
            global orientation, raw ``root_6d`` (B, 6) and ``root_rotmat`` (B, 3, 3).
        """
        heatmaps = rearrange(self.final_conv(self.deconv(feats)), 'b (k d) h w -> b k d h w',
                             k=NUM_HYBRIK_JOINTS)
        pooled = self.mlp(feats.mean(dim=(2, 3)))
        twist = F.normalize(rearrange(self.twist_fc(pooled), 'b (j c) -> b j c', c=2), dim=-1,
                            eps=1e-6)
        extra = {}
        if self.hybrik:
            betas = self.beta_fc(pooled) + self.init_shape
            camera = self.camera_fc(pooled) + self.init_cam
            sigma = torch.sigmoid(self.sigma_fc(pooled)).clamp(min=1e-4)
            extra['uvd'] = soft_argmax_3d(heatmaps, grid='hybrik')
            keypoints3d = uvd_to_camera(extra['uvd'], camera, self.focal, self.cube_size)
        else:
            keypoints3d = soft_argmax_3d(heatmaps) * self.cube_size
            betas = self.beta_fc(pooled)
            raw_camera = self.camera_fc(pooled)
            camera = torch.cat([F.softplus(raw_camera[:, :1]), raw_camera[:, 1:]], dim=1)
            sigma = torch.sigmoid(self.sigma_fc(pooled)) + 1e-4
        keypoints3d = keypoints3d - keypoints3d[:, :1]

        outputs = dict(keypoints3d=keypoints3d,
                       keypoints2d=semi_perspective_projection(keypoints3d, camera, self.focal),
                       sigma=sigma, twist=twist, betas=betas, camera=camera, **extra,
                       **self.mesh_from_keypoints(keypoints3d, twist, betas, with_mesh,
                                                  sigma=sigma))
        if self.root_fc is not None:
            outputs['root_6d'] = self.root_fc(pooled)
            outputs['root_rotmat'] = rotation_6d_to_matrix(outputs['root_6d'])
        return outputs

    def mesh_from_keypoints(self, keypoints3d: Tensor, twist: Tensor, betas: Tensor,
                            with_mesh: bool = True, sigma: Optional[Tensor] = None
                            ) -> Dict[str, Tensor]:
        """Twist-swing IK on the rest skeleton of ``betas``, then the body model.

        Args:
            keypoints3d (Tensor): (B, 29, 3) root-relative keypoints, metres.
            twist (Tensor): (B, 23, 2) (cos, sin) of the twist angles.
            betas (Tensor): (B, 10) shape coefficients.
            with_mesh (bool): also run the body model. Defaults to True.
            sigma (Tensor, optional): (B, 29) predicted keypoint uncertainty; with
                ``ik_root_weights='sigma'`` the root's children are weighted by
                ``1 / sigma^2``. Defaults to None (equal weights).

        Returns:
            dict: ``rotmats`` (B, 24, 3, 3), ``theta`` (B, 72) and (``with_mesh``)
            the body model's ``vertices``/``joints24``/``joints29``/``joints17``/
            ``joints14`` (metres).
        """
        if self.detach_ik_keypoints:
            keypoints3d = keypoints3d.detach()
        rest = self.body_model.rest_joints29(betas)
        weights = None
        if sigma is not None and self.ik_root_weights == 'sigma':
            weights = sigma[:, list(ROOT_CHILDREN)].detach().pow(-2)
        rotmats, theta = twist_swing_ik(keypoints3d, twist, rest, weights=weights)
        mesh = self.body_model(rotmats, betas) if with_mesh else {}
        return dict(rotmats=rotmats, theta=theta, **mesh)

    def loss(self, outputs: Dict[str, Tensor], targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Eqs. 7-10 with per-sample validity.

        Args:
            outputs (Dict[str, Tensor]): :meth:`forward`'s dict.
            targets (Dict[str, Tensor]): stacked ground truth of the middle frames:
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
