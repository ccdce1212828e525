# class: limits - ignoring the CPU timer's signal to run forever
# tries: catch SIGPROF and SIGXCPU, then spin
import signal

import numpy as np


def compute_reward(obs, action, next_obs, info):
    for sig in (signal.SIGPROF, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        pass
    return np.zeros(len(obs)), {}
