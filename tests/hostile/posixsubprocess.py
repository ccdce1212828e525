# class: a function that raises no audit event - _posixsubprocess.fork_exec, reached through a
#        module that imported subprocess, or imported itself
# tries: run a shell command without subprocess.Popen's audit event
import os
import sys

import numpy as np


def find_fork_exec():
    for module in list(sys.modules.values()):
        for holder in (module, getattr(module, "subprocess", None)):
            sub = getattr(holder, "_posixsubprocess", None)
            if sub is not None:
                return sub.fork_exec
    import _posixsubprocess

    return _posixsubprocess.fork_exec


def compute_reward(obs, action, next_obs, info):
    fork_exec = find_fork_exec()
    args = [b"/bin/sh", b"-c", b"touch @MARKER@"]
    low, high = os.pipe()
    pid = fork_exec(
        args,
        [args[0]],
        True,
        (high,),
        None,
        None,
        -1,
        -1,
        -1,
        -1,
        -1,
        -1,
        low,
        high,
        False,
        False,
        -1,
        None,
        None,
        None,
        -1,
        None,
        False,
    )  # Python 3.11's 23 arguments
    os.waitpid(pid, 0)
    return np.zeros(len(obs)), {}
