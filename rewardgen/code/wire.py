"""A small binary message format for the sandbox pipe: JSON structure plus raw array bytes.

No pickle in either direction: the parent never unpickles what untrusted code could touch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["decode", "encode"]


def encode(obj: Any) -> bytes:
    """Nested dicts/lists of numpy arrays, numbers, strings and None -> bytes."""
    chunks: list[bytes] = []
    offset = 0

    def enc(x: Any) -> Any:
        nonlocal offset
        if isinstance(x, np.ndarray | np.generic):
            arr = np.ascontiguousarray(x)
            if arr.dtype.hasobject:
                raise TypeError("object arrays cannot cross the sandbox boundary")
            data = arr.tobytes()
            chunks.append(data)
            ref = {"__nd__": [arr.dtype.str, list(arr.shape), offset, len(data)]}
            offset += len(data)
            return ref
        if isinstance(x, dict):
            return {"__dict__": [[str(k), enc(v)] for k, v in x.items()]}
        if isinstance(x, list | tuple):
            return [enc(v) for v in x]
        if x is None or isinstance(x, bool | int | float | str):
            return x
        raise TypeError(f"cannot send a {type(x).__name__} across the sandbox boundary")

    header = json.dumps(enc(obj)).encode()
    return len(header).to_bytes(8, "little") + header + b"".join(chunks)


def decode(message: bytes) -> Any:
    n = int.from_bytes(message[:8], "little")
    header = json.loads(message[8 : 8 + n])
    body = memoryview(message)[8 + n :]

    def dec(x: Any) -> Any:
        if isinstance(x, dict):
            if "__nd__" in x:
                dtype, shape, start, size = x["__nd__"]
                dt = np.dtype(dtype)
                if dt.hasobject:
                    raise TypeError("object arrays are refused")
                return np.frombuffer(body[start : start + size], dtype=dt).reshape(shape).copy()
            return {k: dec(v) for k, v in x["__dict__"]}
        if isinstance(x, list):
            return [dec(v) for v in x]
        return x

    return dec(header)
