# class: the network - a TCP connection to a listener on this machine
# tries: send the observations to 127.0.0.1
import socket

import numpy as np


def compute_reward(obs, action, next_obs, info):
    s = socket.create_connection(("127.0.0.1", int("@PORT@")), timeout=2)
    s.sendall(b"escaped")
    s.close()
    return np.zeros(len(obs)), {}
