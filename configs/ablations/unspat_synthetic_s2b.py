# Table 4 (2): Space2Batch only.
_base_ = ['../unspat_synthetic.py']
model = dict(neck=dict(attention='space2batch', use_sam=False, use_uncertainty=False))
