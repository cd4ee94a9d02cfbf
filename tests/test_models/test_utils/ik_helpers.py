"""Checks shared by the IK tests."""
import torch

from unspat_mm.models.utils import twist_swing_ik


def is_rotation(rot, tol=1e-5):
    """Whether every (..., 3, 3) matrix is orthonormal with determinant +1."""
    eye = torch.eye(3, dtype=rot.dtype)
    return ((rot.transpose(-1, -2) @ rot - eye).abs().max() < tol
            and (torch.linalg.det(rot) - 1).abs().max() < tol)


def finite_with_grads(keypoints, rest, twist=None, weights=None):
    """Run the IK and back-propagate a random loss; assert finite rotations, theta and
    gradients for every input (keypoints, rest, twist, weights). Returns the rotations."""
    if twist is None:
        twist = torch.tensor([1., 0.]).expand(keypoints.shape[0], 23, 2)
    inputs = [x.clone().requires_grad_() if x is not None else None
              for x in (keypoints, rest, twist, weights)]
    keypoints, rest, twist, weights = inputs
    rot, theta = twist_swing_ik(keypoints, twist, rest, weights=weights)
    assert torch.isfinite(rot).all() and torch.isfinite(theta).all()
    assert is_rotation(rot)
    g = torch.Generator().manual_seed(0)
    loss = (rot * torch.randn(rot.shape, generator=g)).sum() + (
        theta * torch.randn(theta.shape, generator=g)).sum()
    loss.backward()
    for x in inputs:
        assert x is None or torch.isfinite(x.grad).all()
    return rot
