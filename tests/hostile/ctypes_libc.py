# class: native code - libc through ctypes
# tries: write a file with libc's open() and run a command with libc's system()
import ctypes

import numpy as np


def compute_reward(obs, action, next_obs, info):
    libc = ctypes.CDLL(None)
    fd = libc.open(b"@MARKER@", 0o101, 0o644)
    if fd >= 0:
        libc.write(fd, b"escaped", 7)
    libc.system(b"touch @MARKER@")
    return np.zeros(len(obs)), {}
