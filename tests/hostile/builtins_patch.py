# class: the worker's own code calling the program's - builtins replaced
# tries: replace type(), len() and str() so that the worker's handling of the result writes a file
import builtins

import numpy as np

_type, _len, _str = builtins.type, builtins.len, builtins.str


def _payload():
    open("@MARKER@", "w").write("escaped")


def compute_reward(obs, action, next_obs, info):
    builtins.type = lambda *a: (_payload(), _type(*a))[1]
    builtins.len = lambda x: (_payload(), _len(x))[1]
    builtins.str = lambda *a: (_payload(), _str(*a))[1]
    return np.zeros(_len(obs)), {}
