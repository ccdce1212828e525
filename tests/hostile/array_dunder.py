# class: code the program defines, run on its result - __array__ on the returned total
# tries: write a file from __array__, which the worker used to call after switching its audit off
import numpy as np


class Total:
    def __array__(self, dtype=None, copy=None):
        open("@MARKER@", "w").write("escaped")
        return np.zeros(4)


def compute_reward(obs, action, next_obs, info):
    return Total(), {}
