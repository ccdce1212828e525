# class: code the program defines, run on its result - a component key whose __str__ acts
# tries: write a file when the worker turns the component names into strings
import numpy as np


class Key:
    def __str__(self):
        open("@MARKER@", "w").write("escaped")
        return "speed"

    def __hash__(self):
        return 1


def compute_reward(obs, action, next_obs, info):
    return np.zeros(len(obs)), {Key(): np.zeros(len(obs))}
