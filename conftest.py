"""Doctests of modules whose optional extra this environment lacks are not collected (the
sample-factory stack has no `web` or `vlm` extra); their tests skip with the reason instead."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
    collect_ignore += ["rewardgen/feedback/web.py", "rewardgen/feedback/server.py"]
if importlib.util.find_spec("transformers") is None:
    collect_ignore.append("rewardgen/vlm/testing.py")

# The hostile corpus is read as text by tests/test_sandbox_walls.py and run only in the sandbox.
collect_ignore_glob = ["tests/hostile/*"]
