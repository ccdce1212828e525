# A dense reward for Meta-World's drawer-open, written by hand for rewardgen in Text2Reward's
# published format: compute_dense_reward(self, action, obs) for one step, reading the env through
# self.env. Train on it with:
#   rewardgen train --task metaworld-drawer-open --reward examples/drawer_open_t2r.py \
#       --reward-format text2reward
import numpy as np


def compute_dense_reward(self, action, obs) -> float:
    # where the gripper is, where the handle is, and where the drawer should end up
    tcp = self.env.tcp_center
    handle = obs[4:7]
    target = self.env._target_pos

    # stage 1: reach the handle
    reach = np.linalg.norm(tcp - handle)
    reward = -reach

    # stage 2: once at the handle, pull it towards the target (the drawer opens along -y)
    if reach < 0.05:
        pull = np.linalg.norm(handle - target)
        reward += 1.0 - pull

    # a little smoothness: large actions cost
    reward -= 0.01 * np.sum(np.square(action))
    return reward
