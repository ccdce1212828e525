# class: code the program defines, run on its result - a dict subclass's items()
# tries: write a file when the worker walks the components
import numpy as np


class Parts(dict):
    def items(self):
        open("@MARKER@", "w").write("escaped")
        return super().items()


def compute_reward(obs, action, next_obs, info):
    return np.zeros(len(obs)), Parts(speed=np.zeros(len(obs)))
