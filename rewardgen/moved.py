"""Old import paths that still work for this release: modules that moved in 0.1 (the training
back ends became packages, the alarm and the reward check went to :mod:`rewardgen.diagnostics`,
PrefPPO's loop to :mod:`rewardgen.preference`, ``code`` became :mod:`rewardgen.programs` and
``intrinsic`` :mod:`rewardgen.oni`). Importing one by its old name gives the module
at its new name, with a :class:`DeprecationWarning` that says where it went; the old names go in
the next release.

``rewardgen.train`` itself is the function now (:func:`rewardgen.training.train`, as ``from
rewardgen import train`` gives it); ``from rewardgen.train import TrainConfig`` still finds the
package, which is :mod:`rewardgen.training`. One form cannot work: ``import rewardgen.train.X as
Y`` reads ``rewardgen.train`` as an attribute, the function; write ``from rewardgen.train import
X`` (or the new name).

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     from rewardgen.train.sf_settings import SF_DEFAULTS  # now rewardgen.training.sf.settings
    >>> new_name("rewardgen.train.callback"), new_name("rewardgen.tasks")
    ('rewardgen.training.sb3.callback', None)
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["MOVED", "PACKAGES", "install", "new_name"]

#: Old module name -> new one; a package's move carries its submodules along unless listed.
MOVED = {
    "rewardgen.train": "rewardgen.training",
    "rewardgen.train.sb3": "rewardgen.training.sb3",
    "rewardgen.train.callback": "rewardgen.training.sb3.callback",
    "rewardgen.train.deferred": "rewardgen.training.sb3.deferred",
    "rewardgen.train.hyperparams": "rewardgen.training.sb3.hyperparams",
    "rewardgen.train.sf": "rewardgen.training.sf",
    "rewardgen.train.sf_env": "rewardgen.training.sf.env",
    "rewardgen.train.sf_settings": "rewardgen.training.sf.settings",
    "rewardgen.train.sf_output": "rewardgen.training.sf.output",
    "rewardgen.train.sf_nethack": "rewardgen.training.sf.nethack",
    "rewardgen.train.alarm": "rewardgen.diagnostics.alarm",
    "rewardgen.train.check": "rewardgen.diagnostics.check",
    "rewardgen.synthesis.prefppo": "rewardgen.preference.prefppo",
    "rewardgen.code": "rewardgen.programs",
    "rewardgen.intrinsic": "rewardgen.oni",
}
#: Packages that moved whole: their submodules keep their names under the new package.
PACKAGES = ("rewardgen.train", "rewardgen.code", "rewardgen.intrinsic")


def new_name(old: str) -> str | None:
    """Where the module ``old`` lives now (None: it did not move)."""
    if old in MOVED:
        return MOVED[old]
    parent, _, leaf = old.rpartition(".")
    return f"{MOVED[parent]}.{leaf}" if parent in PACKAGES else None


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a moved module by its old name: the module at its new name, said once."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname in PACKAGES)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = new_name(spec.name)
        assert new is not None
        warnings.warn(
            f"{spec.name} moved to {new}: import it from there (the old name goes in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._spec = module.__spec__  # the import system writes the old name's spec over it
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec


def install() -> None:
    """Let the old names be imported (once per process)."""
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        # first: an old package's alias has the new package's path, where the path finder would
        # load a second copy of each submodule under its old name
        sys.meta_path.insert(0, _OldPaths())
