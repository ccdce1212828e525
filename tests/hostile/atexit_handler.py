# class: code the program defines, run at the worker's end - an exit handler
# tries: register a function that writes a file when the interpreter exits
# quiet: the handler never runs; the reward itself works
import atexit

import numpy as np


def _payload():
    open("@MARKER@", "w").write("escaped")


atexit.register(_payload)


def compute_reward(obs, action, next_obs, info):
    return np.zeros(len(obs)), {}
