# UNSPAT, the paper's Table 2 protocol: trained WITHOUT 3DPW (the rest of the mixture,
# the model and the schedule as configs/unspat_3dpw.py), tested on the 3DPW test set.
# The model starts, as there, from the converted HybrIK file with its backbone frozen;
# for this protocol that HybrIK checkpoint must not have been trained on 3DPW either.
#   python tools/train.py configs/unspat_3dpw_wo3dpw.py
#   python tools/test.py configs/test/3dpw.py CHECKPOINT
_base_ = ['./unspat_3dpw.py']

_mixture = _base_.train_dataloader.dataset.datasets  # [3D group, 2D group]
train_dataloader = dict(dataset=dict(datasets=[
    dict(_mixture[0], datasets=[d for d in _mixture[0].datasets if d.type != 'PW3DDataset']),
    _mixture[1],
]))
del _mixture  # a helper name, not a setting
