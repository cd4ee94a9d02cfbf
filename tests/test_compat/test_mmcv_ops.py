"""The mmcv-lite stand-in: mmpose/mmdet import, NMS is right, other ops refuse clearly."""
import importlib

import pytest
import torch

import unspat_mm  # noqa: F401
from unspat_mm.compat import mmcv_ops

pytestmark = pytest.mark.skipif(
    mmcv_ops.HAS_COMPILED_MMCV,
    reason='a compiled mmcv is installed, so the stand-in is (correctly) not used')


def _brute_force_nms(boxes, scores, thr):
    keep = []
    for i in scores.argsort(descending=True).tolist():
        ok = True
        for j in keep:
            lt = torch.maximum(boxes[i, :2], boxes[j, :2])
            rb = torch.minimum(boxes[i, 2:], boxes[j, 2:])
            inter = (rb - lt).clamp(min=0).prod()
            area = lambda b: (b[2:] - b[:2]).prod()  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_mmpose_and_mmdet_models_import():
    for name in ('mmpose.models', 'mmdet.models'):
        assert importlib.import_module(name) is not None
    import mmcv.ops
    assert mmcv.ops.__unspat_standin__


def test_nms_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(60, 2, generator=g) * 20], 1)
    scores = torch.rand(60, generator=g)
    import mmcv.ops
    dets, keep = mmcv.ops.nms(boxes, scores, 0.3)
    assert keep.tolist() == _brute_force_nms(boxes, scores, 0.3)
    torch.testing.assert_close(dets[:, 4], scores[keep])
    # batched: class 1 never suppresses class 0
    idxs = torch.arange(60) % 2
    _, keep_b = mmcv.ops.batched_nms(boxes, scores, idxs, dict(iou_threshold=0.3))
    expected = []
    for c in (0, 1):
        sel = torch.nonzero(idxs == c).flatten()
        expected += sel[_brute_force_nms(boxes[sel], scores[sel], 0.3)].tolist()
    assert sorted(keep_b.tolist()) == sorted(expected)


def test_point_sample_matches_grid_sample_corners():
    feat = torch.arange(16.).reshape(1, 1, 4, 4)
    import mmcv.ops
    # centre of cell (row 1, col 2) in [0, 1] coordinates with align_corners=False
    out = mmcv.ops.point_sample(feat, torch.tensor([[[2.5 / 4, 1.5 / 4]]]))
    assert out.item() == pytest.approx(6.0)


def test_missing_op_names_mmcv_full():
    from mmcv.ops import DeformConv2d  # importing works (mmdet does it at import time)
    with pytest.raises(ImportError, match='mmcv-full.*mim install'):
        DeformConv2d(3, 3, 3)
    from mmcv.ops.roi_align import roi_align
    with pytest.raises(ImportError, match='roi_align needs the compiled mmcv'):
        roi_align(None, None, (7, 7))
