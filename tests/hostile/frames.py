# class: the worker's frames - a traceback's tb_frame leads to the worker's locals and globals
# tries: take os from the calling frame's globals and run a command
import numpy as np


def compute_reward(obs, action, next_obs, info):
    try:
        raise ValueError
    except ValueError as exc:
        frame = exc.__traceback__.tb_frame.f_back
    frame.f_globals["os"].system("touch @MARKER@")
    return np.zeros(len(obs)), {}
