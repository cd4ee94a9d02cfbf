# Table 4 (1): no Space2Batch (full attention over all t*h*w tokens), no SAM, no uncertainty.
_base_ = ['../unspat_synthetic.py']
model = dict(neck=dict(attention='full', use_sam=False, use_uncertainty=False))
