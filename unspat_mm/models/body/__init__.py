from .smpl_layer import (SMPLBodyModel, load_body_model_arrays, resolve_body_model_file,
                         validate_body_model_arrays)

__all__ = [
    'SMPLBodyModel', 'load_body_model_arrays', 'validate_body_model_arrays',
    'resolve_body_model_file'
]
