# Related design (MPS-Net-like): temporal attention on spatially pooled features.
_base_ = ['../unspat_synthetic.py']
model = dict(neck=dict(attention='gap_temporal'))
