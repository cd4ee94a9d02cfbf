# Table 4 (4): Space2Batch + SAM, no uncertainty.
_base_ = ['../unspat_synthetic.py']
model = dict(neck=dict(attention='space2batch', use_sam=True, use_uncertainty=False))
