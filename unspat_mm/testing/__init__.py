"""Writers of tiny fixtures in the public dataset formats, with known ground truth
(like ``mmpose.testing``): used by the converter, dataset and end-to-end tests."""
from .humandata_fixture import HUMANDATA_FIXTURE_DATASETS, write_humandata_fixture
from .pw3d_fixture import PW3D_FIXTURE_FOCAL, write_pw3d_fixture
from .py2_pickle import dumps_py2
from .tree_digest import tree_digest

__all__ = ['write_pw3d_fixture', 'write_humandata_fixture', 'dumps_py2',
           'PW3D_FIXTURE_FOCAL', 'HUMANDATA_FIXTURE_DATASETS', 'tree_digest']
