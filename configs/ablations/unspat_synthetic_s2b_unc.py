# Table 4 (3): Space2Batch + uncertainty-guided re-weighting, no SAM.
_base_ = ['../unspat_synthetic.py']
model = dict(neck=dict(attention='space2batch', use_sam=False, use_uncertainty=True))
