# class: code the program defines, run on its result - __float__ of the total's elements
# tries: write a file from __float__ when the worker converts an object array to floats
import numpy as np


class Number:
    def __float__(self):
        open("@MARKER@", "w").write("escaped")
        return 0.0


def compute_reward(obs, action, next_obs, info):
    total = np.empty(len(obs), dtype=object)
    total[:] = [Number() for _ in range(len(obs))]
    return total, {}
