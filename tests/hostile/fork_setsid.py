# class: a process that outlives the sandbox - fork, setsid, write later
# tries: fork a child that leaves the worker's session and writes a file
import os
import time

import numpy as np


def compute_reward(obs, action, next_obs, info):
    if os.fork() == 0:
        os.setsid()
        open("@MARKER@", "w").write("escaped")
        time.sleep(30)
        os._exit(0)
    time.sleep(0.2)  # long enough for the child to leave the worker's process group
    return np.zeros(len(obs)), {}
