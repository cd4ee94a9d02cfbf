from .space2batch_attention import (TransformerEncoderLayer, UncertaintyGuidedAttention,
                                    UncertaintyGuidedTransformer, batch2space,
                                    same_position_mask, space2batch)
from .spatial_alignment import SpatialAlignment, make_sampling_grid, warp_features
from .uncertainty import UncertaintyEstimator, make_synthetic_artifacts, sample_artifact_mask
from .unspat_neck import UNSPATNeck, UNSPATNeckOutput

__all__ = [
    'SpatialAlignment', 'make_sampling_grid', 'warp_features', 'UncertaintyEstimator',
    'make_synthetic_artifacts', 'sample_artifact_mask', 'UncertaintyGuidedAttention',
    'TransformerEncoderLayer', 'UncertaintyGuidedTransformer', 'space2batch', 'batch2space',
    'same_position_mask', 'UNSPATNeck', 'UNSPATNeckOutput'
]
