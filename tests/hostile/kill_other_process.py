# class: reaching other processes - a signal to a process that is not the worker
# tries: kill another process of the machine (the test starts one for it to aim at)
import os
import signal

import numpy as np


def compute_reward(obs, action, next_obs, info):
    os.kill(int("@VICTIM@"), signal.SIGKILL)
    return np.zeros(len(obs)), {}
