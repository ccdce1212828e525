# class: a string run as code - typing.get_type_hints evaluates string annotations
# tries: run a shell command from an annotation (the parenthesis hides the dunder from a check
#        that reads the string's start)
import typing

import numpy as np


def hint(x: "(__import__('os').system('touch @MARKER@'))"):
    return x


def compute_reward(obs, action, next_obs, info):
    typing.get_type_hints(hint)
    return np.zeros(len(obs)), {}
