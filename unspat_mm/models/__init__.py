# mmpose's models are the parent scope of ours (ResNet, mmpose's losses, ...):
# import them so that names we do not define resolve there.
import mmpose.models  # noqa: F401

from .body import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .estimators import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
