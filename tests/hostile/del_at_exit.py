# class: code the program defines, run at the worker's end - __del__ of a module-level object
# tries: write a file from a destructor that runs at interpreter shutdown, after the audit hooks
#        are cleared
# quiet: the destructor never runs; the reward itself works
import numpy as np


class Lingering:
    def __del__(self):
        open("@MARKER@", "w").write("escaped")


KEEP = [Lingering()]


def compute_reward(obs, action, next_obs, info):
    return np.zeros(len(obs)), {}
