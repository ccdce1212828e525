# class: code the program defines, run on its error - __str__ of a raised exception
# tries: write a file from __str__ when the worker describes the error
class Loud(Exception):
    def __str__(self):
        open("@MARKER@", "w").write("escaped")
        return "loud"


def compute_reward(obs, action, next_obs, info):
    raise Loud()
