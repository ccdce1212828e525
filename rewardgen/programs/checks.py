"""Static checks for untrusted reward code (written by an LLM): extract it, parse it, refuse what
a reward never needs. The sandbox (:mod:`rewardgen.programs.sandbox`) is the second line."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from rewardgen.errors import RewardgenError

__all__ = [
    "ALLOWED_IMPORTS",
    "SCIPY_MODULES",
    "CodeCheckError",
    "extract_code",
    "modules_to_preload",
    "static_check",
]

#: Modules a reward program may import (and their submodules, unless refused below; of scipy
#: only :data:`SCIPY_MODULES`).
ALLOWED_IMPORTS = frozenset(
    {"numpy", "math", "scipy", "typing", "dataclasses", "functools", "itertools", "collections", "__future__"}
)
#: The vetted part of scipy: pure computation (distances, rotations, special functions, linear
#: algebra), nothing that reads files. The sandbox imports what a program names before it runs,
#: since imports are refused once it does.
SCIPY_MODULES = (
    "scipy.spatial",
    "scipy.spatial.distance",
    "scipy.spatial.transform",
    "scipy.special",
    "scipy.linalg",
)
_REFUSED_MODULES = (
    "numpy.ctypeslib",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "scipy.io",
    "scipy.misc",
    "scipy.datasets",
    "numpy.lib.format",
    "numpy.lib.npyio",
)
_REFUSED_NAMES = frozenset(
    {
        "open",
        "eval",
        "exec",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "exit",
        "quit",
        "__builtins__",
        "__loader__",
        "__spec__",
    }
)
#: numpy/scipy functions and methods that read or write files or reach outside the process.
_REFUSED_ATTRS = frozenset(
    {
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "memmap",
        "fromregex",
        "DataSource",
        "ctypeslib",
        "ctypes",
        "f2py",
        "lib",
        "dump",
        "dumps",
        "open_memmap",
        "system",
        "popen",
        "os",
        "sys",
        "subprocess",
        "socket",
        "builtins",
        "importlib",
        "testing",  # numpy.testing.measure compiles and runs a string
        "get_type_hints",  # evaluates string annotations
        "as_strided",  # reads and writes memory outside an array's own
    }
)
#: Special methods a program's classes may define: the rest (``__array__``, ``__float__``,
#: ``__str__``, ``__del__``, ...) would run when the worker handles what the program returns.
_ALLOWED_SPECIAL_METHODS = frozenset({"__init__", "__post_init__"})

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)


class CodeCheckError(RewardgenError, ValueError):
    """Untrusted code was refused before it ran."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    problems: tuple[str, ...]


def extract_code(text: str) -> str:
    """The reward code in an LLM reply: the fenced block that defines ``compute_reward`` (else
    the longest fenced block), or the whole reply when it has no fence but parses as Python.

    Example:
        >>> extract_code("Here:\\n```python\\ndef compute_reward(o, a, n, i):\\n    pass\\n```\\nDone.")
        'def compute_reward(o, a, n, i):\\n    pass\\n'
    """
    blocks = _FENCE.findall(text)
    if blocks:
        with_entry = [b for b in blocks if "def compute_reward" in b]
        return max(with_entry or blocks, key=len)
    try:
        ast.parse(text)
    except SyntaxError:
        raise CodeCheckError("the reply has no ```python code block and is not Python itself") from None
    return text


def _module_allowed(name: str) -> bool:
    if any(name == r or name.startswith(r + ".") for r in _REFUSED_MODULES):
        return False
    if name.split(".")[0] == "scipy":
        return name == "scipy" or any(name == m or name.startswith(m + ".") for m in SCIPY_MODULES)
    return name.split(".")[0] in ALLOWED_IMPORTS


def _scipy_chain(node: ast.AST) -> str | None:
    """``scipy.spatial.distance`` for an attribute chain rooted at the name ``scipy``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "scipy":
        return ".".join(["scipy", *reversed(parts)])
    return None


def modules_to_preload(source: str) -> list[str]:
    """The vetted scipy modules ``source`` uses (imports, ``from scipy import spatial``, and
    ``scipy.special.expit`` after ``import scipy``), for the sandbox to import before it runs.

    Example:
        >>> modules_to_preload("from scipy.spatial import distance\\nimport numpy as np\\n")
        ['scipy.spatial', 'scipy.spatial.distance']
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    wanted: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute) and (chain := _scipy_chain(node)):
            parts = chain.split(".")
            names = [".".join(parts[:k]) for k in range(2, len(parts) + 1)]
        for name in names:
            for module in SCIPY_MODULES:
                if (name == module or name.startswith(module + ".")) and module not in wanted:
                    wanted.append(module)
    return sorted(wanted, key=lambda m: (m.count("."), m))


def _scipy_refusal(name: str) -> str:
    return f"'{name}' is not in the sandbox's part of scipy (allowed: {', '.join(SCIPY_MODULES)})"


def static_check(source: str) -> CheckResult:
    """Every reason to refuse ``source`` (empty when it may run in the sandbox).

    Example:
        >>> static_check("import os\\n").problems[0][:35]
        "line 1: import of 'os' is not allow"
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return CheckResult(False, (f"line {exc.lineno}: syntax error: {exc.msg}",))
    problems: list[str] = []
    allowed = ", ".join(sorted(ALLOWED_IMPORTS))
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("scipy.") and not _module_allowed(alias.name):
                    problems.append(f"line {line}: {_scipy_refusal(alias.name)}")
                elif not _module_allowed(alias.name):
                    problems.append(
                        f"line {line}: import of '{alias.name}' is not allowed (allowed: {allowed})"
                    )
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or not _module_allowed(module):
                problems.append(f"line {line}: import from '{module}' is not allowed (allowed: {allowed})")
            for alias in node.names:
                if alias.name in _REFUSED_ATTRS or alias.name.startswith("_"):
                    problems.append(f"line {line}: importing '{alias.name}' is not allowed")
                elif module == "scipy" and not _module_allowed(f"scipy.{alias.name}"):
                    problems.append(f"line {line}: {_scipy_refusal(f'scipy.{alias.name}')}")
        elif isinstance(node, ast.Name):
            if node.id in _REFUSED_NAMES:
                problems.append(f"line {line}: '{node.id}' is not allowed in a reward program")
            elif node.id.startswith("__") and node.id != "__name__":
                problems.append(f"line {line}: dunder name '{node.id}' is not allowed")
        elif isinstance(node, ast.Attribute):
            chain = _scipy_chain(node)
            if chain and chain.count(".") == 1 and not _module_allowed(chain):
                problems.append(f"line {line}: {_scipy_refusal(chain)}")
            elif node.attr.startswith("_"):
                problems.append(f"line {line}: private or dunder attribute '.{node.attr}' is not allowed")
            elif node.attr in _REFUSED_ATTRS:
                problems.append(
                    f"line {line}: '.{node.attr}' (file, process or system access) is not allowed"
                )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("__"):
            problems.append(f"line {line}: the string {node.value!r} looks like a dunder lookup")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.name.startswith("__") and node.name.endswith("__")
        ):
            if node.name not in _ALLOWED_SPECIAL_METHODS:
                problems.append(
                    f"line {line}: defining the special method '{node.name}' is not allowed "
                    "(a reward returns numpy arrays and a dict; only __init__ and __post_init__)"
                )
        elif isinstance(node, ast.ClassDef) and node.keywords:
            problems.append(f"line {line}: class keywords (metaclass=...) are not allowed")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            problems.append(f"line {line}: '{type(node).__name__.lower()}' statements are not allowed")
    if not problems and not any(
        isinstance(n, ast.FunctionDef) and n.name == "compute_reward" for n in tree.body
    ):
        problems.append("no top-level function compute_reward(obs, action, next_obs, info)")
    return CheckResult(not problems, tuple(dict.fromkeys(problems)))
