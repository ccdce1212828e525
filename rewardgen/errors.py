"""Errors a user can act on: each message is one line that names the bad value and the fix."""

from __future__ import annotations

import importlib
from types import ModuleType


class RewardgenError(Exception):
    """Base of every error rewardgen raises on purpose; the CLI prints it as one line."""


class MissingExtraError(RewardgenError, ImportError):
    """An optional dependency is not installed."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail with a one-line message naming the extra that provides it.

    Example:
        >>> np = require("numpy", extra="core", purpose="arrays")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the '{module}' package: install it with "
            f"pip install 'rewardgen[{extra}]' ({exc})"
        ) from exc
