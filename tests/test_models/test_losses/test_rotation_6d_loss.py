import pytest
import torch
from scipy.spatial.transform import Rotation

from unspat_mm.models.losses import Rotation6DLoss
from unspat_mm.models.utils import rotation_6d_to_matrix


def _rotations(num, seed):
    mats = Rotation.random(num, random_state=seed).as_matrix()
    return torch.from_numpy(mats), torch.from_numpy(Rotation.from_matrix(mats).as_rotvec())


def test_target_is_the_6d_that_maps_back_to_the_rotation():
    mats, rotvec = _rotations(5, seed=0)
    loss = Rotation6DLoss(loss_weight=2.0)
    target6d = torch.cat([mats[:, :, 0], mats[:, :, 1]], dim=1)
    torch.testing.assert_close(rotation_6d_to_matrix(target6d), mats)  # same layout
    assert loss(target6d, mats) == 0 and loss(target6d, rotvec) < 1e-15  # (Rodrigues round-off)
    # on the raw output: scaling a correct 6D vector is penalised, unlike after Gram-Schmidt
    pred = 3 * target6d
    torch.testing.assert_close(loss(pred, mats), 2.0 * (4 * target6d**2).mean())
    torch.testing.assert_close(rotation_6d_to_matrix(pred), mats)


def test_masked_sample_gives_neither_value_nor_gradient():
    mats, _ = _rotations(3, seed=1)
    pred = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    target = mats.clone()
    target[1] = float('nan')
    value = Rotation6DLoss()(pred, target, torch.tensor([1., 0., 1.]))
    value.backward()
    keep = torch.cat([mats[[0, 2], :, 0], mats[[0, 2], :, 1]], dim=1)
    torch.testing.assert_close(value, ((pred[[0, 2]] - keep)**2).mean())
    assert torch.isfinite(pred.grad).all() and not pred.grad[1].any()


@pytest.mark.parametrize('pred, target, match', [
    (torch.zeros(2, 9), torch.zeros(2, 3), r'raw 6D rotation \(B, 6\), got \(2, 9\)'),
    (torch.zeros(2, 6), torch.zeros(2, 72), r'one rotation per sample.*\(2, 72\)'),
])
def test_bad_shapes_say_what_is_expected(pred, target, match):
    with pytest.raises(ValueError, match=match):
        Rotation6DLoss()(pred, target)
