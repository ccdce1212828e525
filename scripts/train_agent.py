#!/usr/bin/env python
"""Train an agent on a reward program: the same as `rewardgen train`, runnable as a script.

python scripts/train_agent.py --task halfcheetah-run-backward --reward my_reward.py --steps 1e6
"""

import sys

from rewardgen.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
