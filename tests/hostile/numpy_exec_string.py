# class: a string run as code - numpy.testing.measure compiles and runs a string
# tries: run a shell command from a string the static checks cannot read
import numpy as np


def compute_reward(obs, action, next_obs, info):
    np.testing.measure("import os; os.system('touch @MARKER@')", 1)
    return np.zeros(len(obs)), {}
