# class: native code - writing the worker's own memory through /proc/self/mem
# tries: open /proc/self/mem for writing (a way to patch the interpreter and its audit hooks)
import numpy as np


def compute_reward(obs, action, next_obs, info):
    with open("/proc/self/mem", "r+b") as mem:
        mem.seek(0)
    open("@MARKER@", "w").write("escaped")
    return np.zeros(len(obs)), {}
