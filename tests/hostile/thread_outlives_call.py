# class: a process that outlives the sandbox - a thread that acts after the call returns
# tries: start a thread that writes a file once the worker is idle
import sys

import numpy as np


def _payload():
    sys.modules["time"].sleep(0.1)
    open("@MARKER@", "w").write("escaped")


def compute_reward(obs, action, next_obs, info):
    sys.modules["threading"].Thread(target=_payload).start()
    return np.zeros(len(obs)), {}
