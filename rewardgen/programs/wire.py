"""A small binary message format for the sandbox pipe: JSON structure plus raw array bytes.

No pickle in either direction: the parent never unpickles what untrusted code could touch.

A reward call sends the same structure every step (the same keys, dtypes and shapes), so both
ends cache the work that depends only on the structure: the encoder reuses the JSON header
while the structure's signature repeats, the decoder reuses the compiled layout of a header it
has seen. Only the array bytes change from call to call.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["decode", "encode"]

_SCALARS = (bool, int, float, str)
_HEADERS: OrderedDict[tuple, bytes] = OrderedDict()  # structure signature -> header bytes
_LAYOUTS: OrderedDict[tuple[bytes, bool], Callable[[memoryview], Any]] = OrderedDict()
_CACHE_SIZE = 32


def _flatten(x: Any, arrays: list[np.ndarray], sig: list[Any]) -> None:
    """Collect the arrays of ``x`` (in order) and a signature of everything else."""
    if isinstance(x, np.ndarray | np.generic):
        arr = np.ascontiguousarray(x)
        if arr.dtype.hasobject:
            raise TypeError("object arrays cannot cross the sandbox boundary")
        arrays.append(arr)
        sig.append((arr.dtype.str, arr.shape))
    elif isinstance(x, dict):
        sig.append(("{", len(x)))
        for k, v in x.items():
            sig.append(str(k))
            _flatten(v, arrays, sig)
    elif isinstance(x, list | tuple):
        sig.append(("[", len(x)))
        for v in x:
            _flatten(v, arrays, sig)
    elif x is None or isinstance(x, _SCALARS):
        sig.append((type(x).__name__, x))
    else:
        raise TypeError(f"cannot send a {type(x).__name__} across the sandbox boundary")


def _header(obj: Any) -> bytes:
    offset = 0

    def enc(x: Any) -> Any:
        nonlocal offset
        if isinstance(x, np.ndarray | np.generic):
            arr = np.ascontiguousarray(x)
            ref = {"__nd__": [arr.dtype.str, list(arr.shape), offset, arr.nbytes]}
            offset += arr.nbytes
            return ref
        if isinstance(x, dict):
            return {"__dict__": [[str(k), enc(v)] for k, v in x.items()]}
        if isinstance(x, list | tuple):
            return [enc(v) for v in x]
        return x

    return json.dumps(enc(obj)).encode()


def _remember(cache: OrderedDict, key: Any, value: Any) -> Any:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def encode(obj: Any) -> bytes:
    """Nested dicts/lists of numpy arrays, numbers, strings and None -> bytes."""
    arrays: list[np.ndarray] = []
    sig: list[Any] = []
    _flatten(obj, arrays, sig)
    key = tuple(sig)
    header = _HEADERS.get(key)
    if header is None:
        header = _remember(_HEADERS, key, _header(obj))
    return b"".join([len(header).to_bytes(8, "little"), header, *(a.tobytes() for a in arrays)])


def _compile(x: Any, copy: bool) -> Callable[[memoryview], Any]:
    """A function that rebuilds the message a header describes from its body bytes (arrays
    copied out of it, or read-only views of it)."""
    if isinstance(x, dict):
        if "__nd__" in x:
            dtype, shape, start, size = x["__nd__"]
            dt = np.dtype(dtype)
            if dt.hasobject:
                raise TypeError("object arrays are refused")
            shape, end = tuple(shape), start + size
            if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != size:
                raise ValueError("array size does not match its shape")
            if copy:
                return lambda body: np.frombuffer(body[start:end], dtype=dt).reshape(shape).copy()
            return lambda body: np.frombuffer(body[start:end], dtype=dt).reshape(shape)
        items = [(k, _compile(v, copy)) for k, v in x["__dict__"]]
        return lambda body: {k: f(body) for k, f in items}
    if isinstance(x, list):
        parts = [_compile(v, copy) for v in x]
        return lambda body: [f(body) for f in parts]
    if x is None or isinstance(x, _SCALARS):
        return lambda body: x
    raise TypeError(f"unexpected {type(x).__name__} in a message header")


def decode(message: bytes, copy: bool = True) -> Any:
    """bytes -> the message; ``copy=False`` gives read-only arrays that view ``message``."""
    n = int.from_bytes(message[:8], "little")
    header = bytes(message[8 : 8 + n])
    build = _LAYOUTS.get((header, copy))
    if build is None:
        build = _remember(_LAYOUTS, (header, copy), _compile(json.loads(header), copy))
    return build(memoryview(message)[8 + n :])
