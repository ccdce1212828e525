"""rewardgen: turn a sentence into a reward and train an agent on it.

The package stays light to import: heavy back ends (MuJoCo, sample-factory, CLIP, NetHack)
load inside the sub-package that needs them.

Example:
    >>> import rewardgen
    >>> rewardgen.__version__
    '0.1.0'
"""

from rewardgen.errors import RewardgenError

__version__ = "0.1.0"
__all__ = ["RewardgenError", "__version__"]
