"""Named fields: how a task's compact description reaches a reward program.

A field's ``source`` says where its value comes from:

- ``obs[i]`` / ``obs[i:j]``: a slice of the (next) observation, read in batch;
- ``obs.KEY`` / ``obs.KEY[i]`` / ``obs.KEY[i:j]``: an entry of a Dict observation (or a slice of it);
- ``info.NAME``: a key of the env's step ``info``;
- ``state.EXPR``: an expression on the unwrapped simulator env, e.g. ``state.is_healthy`` or
  ``state.data.body('bfoot').xpos[2]``, evaluated inside each env by :class:`StateFieldsWrapper`
  (so it works with subprocess vector envs) and passed on through ``info``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.errors import RewardgenError
from rewardgen.rewards.fields import InfoView

__all__ = ["StateFieldsWrapper", "TaskFields", "parse_source"]

_OBS = re.compile(r"^obs\[\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?\]$")
_INFO = re.compile(r"^info\.([A-Za-z_][A-Za-z0-9_]*)$")
_OBS_KEY = re.compile(r"^obs\.([A-Za-z_][A-Za-z0-9_]*)(?:\[\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?\])?$")
_ALLOWED = (
    ast.Expression,
    ast.Attribute,
    ast.Subscript,
    ast.Call,
    ast.Name,
    ast.Constant,
    ast.Slice,
    ast.Tuple,
    ast.Load,
    ast.UnaryOp,
    ast.USub,
)


class FieldSourceError(RewardgenError, ValueError):
    """A field source that cannot be parsed."""


def parse_source(name: str, source: str) -> tuple[str, Any]:
    """Return ``("obs", index_or_slice)``, ``("obs", (key, index_or_slice_or_None))``,
    ``("info", key)`` or ``("state", code)``."""
    source = source.strip()
    if m := _OBS.match(source):
        start, stop = int(m.group(1)), m.group(2)
        return "obs", (start if stop is None else slice(start, int(stop)))
    if m := _OBS_KEY.match(source):
        key, start, stop = m.group(1), m.group(2), m.group(3)
        index = None if start is None else int(start) if stop is None else slice(int(start), int(stop))
        return "obs", (key, index)
    if m := _INFO.match(source):
        return "info", m.group(1)
    if source.startswith("state."):
        expr = "env." + source[len("state.") :]
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError as exc:
            raise FieldSourceError(f"field '{name}': cannot parse source {source!r}") from exc
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED) or (isinstance(node, ast.Name) and node.id != "env"):
                raise FieldSourceError(
                    f"field '{name}': source {source!r} may only use attributes, indexing and "
                    "calls with constant arguments"
                )
        return "state", compile(tree, source, "eval")  # the source names it in tracebacks
    raise FieldSourceError(
        f"field '{name}': unknown source {source!r}; use obs[i], obs[i:j], obs.KEY, info.KEY or state.EXPR"
    )


class StateFieldsWrapper(gym.Wrapper):
    """Evaluate ``state.*`` fields on the simulator after every step and reset; put them in info.

    Example:
        >>> import gymnasium as gym
        >>> code = parse_source("x", "state.data.qpos[0]")[1]
        >>> env = StateFieldsWrapper(gym.make("HalfCheetah-v5"), {"x": code})  # doctest: +SKIP
    """

    def __init__(self, env: gym.Env, state_fields: Mapping[str, Any]):
        super().__init__(env)
        self._fields = dict(state_fields)
        self._ns = {"__builtins__": {}, "env": env.unwrapped}

    def _add(self, info: dict[str, Any]) -> dict[str, Any]:
        for name, code in self._fields.items():
            value = eval(code, self._ns)  # task specs are the user's, shipped, or read-only getters
            try:
                info[name] = np.array(value, dtype=np.float64) if np.ndim(value) else float(value)
            except (TypeError, ValueError):
                raise RewardgenError(
                    f"field '{name}' ({code.co_filename}) is a {type(value).__name__}, "
                    "not a number or an array of numbers"
                ) from None
        return info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._add(dict(info))

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._add(info)


class TaskFields:
    """The field reader of a task: batches obs slices, info keys and state fields by name."""

    def __init__(self, sources: Mapping[str, tuple[str, Any]]):
        self.obs = {n: arg for n, (kind, arg) in sources.items() if kind == "obs"}
        self.info = {
            n: (arg if kind == "info" else n)
            for n, (kind, arg) in sources.items()
            if kind in ("info", "state")
        }
        self.names = list(sources)

    def __call__(self, next_obs: Any, info: InfoView) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in self.names:
            if name in self.obs:
                where = self.obs[name]
                if isinstance(where, tuple):  # an entry of a Dict observation
                    value = next_obs[where[0]]
                    out[name] = value if where[1] is None else value[:, where[1]]
                else:
                    out[name] = next_obs[:, where]
                continue
            value = info.get(self.info[name])
            if value is None:
                raise RewardgenError(
                    f"field '{name}' needs info key '{self.info[name]}', which the env did not "
                    f"report (info keys: {', '.join(info.keys())})"
                )
            out[name] = value
        return out
