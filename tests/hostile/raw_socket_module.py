# class: the network - the C socket module, reached through a module that holds it or imported
# tries: open a socket without importing socket (hidden from sys.modules)
import sys

import numpy as np


def find_socket_module():
    for module in list(sys.modules.values()):
        for holder in (module, getattr(module, "socket", None)):
            raw = getattr(holder, "_socket", None)
            if raw is not None:
                return raw
    import _socket

    return _socket


def compute_reward(obs, action, next_obs, info):
    raw = find_socket_module()
    s = raw.socket(2, 1)
    s.connect(("127.0.0.1", int("@PORT@")))
    s.send(b"escaped")
    return np.zeros(len(obs)), {}
