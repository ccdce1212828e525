# class: switching the audit off from inside - the worker's module state
# tries: reach the worker's module through sys.modules, open its gate or empty its lists, then
#        write a file
import sys

import numpy as np


def compute_reward(obs, action, next_obs, info):
    for module in list(sys.modules.values()):
        space = getattr(module, "__dict__", {})
        if "_GATE" in space:
            space["_GATE"]["worker"] = True
        for key in ("ALLOWED_EVENTS", "_BLOCKED_EVENTS", "_BLOCKED_PREFIXES"):
            if key in space:
                space[key] = frozenset({"open", "os.system", "import"}) if key == "ALLOWED_EVENTS" else ()
    open("@MARKER@", "w").write("escaped")
    return np.zeros(len(obs)), {}
