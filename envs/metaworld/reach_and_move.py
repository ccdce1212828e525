"""Meta-World reference reward: reach the object, then move it to the goal.

Every task of the family is "bring the gripper to a handle, button or object, then push or pull
it to a target": a reach term (closer gripper -> more reward), a move term gated by the reach
(the object's closeness to the target, shaped with a temperature: it pays only while the gripper
is at the object, so an object that starts near its target pays nothing by itself), a small
action penalty and a bonus while the env's success flag is up.
"""

import numpy as np

REACH_TEMPERATURE = 0.05  # m: how sharply the reach term rises near the object
MOVE_TEMPERATURE = 0.05  # m: how sharply the move term rises near the target
REACH_WEIGHT = 1.0
MOVE_WEIGHT = 5.0
SUCCESS_BONUS = 10.0
ACTION_PENALTY = 0.01
GRIP = 0.0  # > 0 rewards a closed gripper near the object (grasping tasks)


def compute_reward(obs, action, next_obs, info):
    reach_dist = np.linalg.norm(info["hand_pos"] - info["obj_pos"], axis=1)
    reach = np.exp(-reach_dist / REACH_TEMPERATURE)
    move = reach * np.exp(-info["obj_to_goal"] / MOVE_TEMPERATURE)
    grip = GRIP * reach * (1.0 - info["gripper_opening"])
    ctrl = ACTION_PENALTY * np.sum(np.clip(action, -1.0, 1.0) ** 2, axis=1)  # the env clips too
    success = SUCCESS_BONUS * info["success"]
    total = REACH_WEIGHT * reach + MOVE_WEIGHT * move + grip + success - ctrl
    return total, {
        "reach": REACH_WEIGHT * reach,
        "move": MOVE_WEIGHT * move,
        "grip": grip,
        "success": success,
        "ctrl": -ctrl,
    }
