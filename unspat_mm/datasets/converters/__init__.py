"""Converters from the public dataset formats to unspat-mm's ``unspat-mm-video-v1``
annotation files (see :mod:`unspat_mm.datasets.annotation_format`). The CLIs are
``tools/dataset_converters/pw3d.py`` and ``tools/dataset_converters/humandata.py``."""
from .humandata import (HUMANDATA_DATASETS, convert_humandata, convert_humandata_file,
                        load_humandata)
from .joint_names import HUMAN_DATA_KEYPOINTS
from .pw3d import (PW3D_SPLITS, convert_pw3d, convert_pw3d_sequence, convert_pw3d_split,
                   load_pw3d_sequence)

__all__ = ['PW3D_SPLITS', 'load_pw3d_sequence', 'convert_pw3d_sequence', 'convert_pw3d_split',
           'convert_pw3d', 'HUMANDATA_DATASETS', 'load_humandata', 'convert_humandata',
           'convert_humandata_file', 'HUMAN_DATA_KEYPOINTS']
