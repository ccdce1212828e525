"""Run reward code written in Text2Reward's published Meta-World format as a rewardgen reward.

Text2Reward's rewards are ``compute_dense_reward(self, action, obs) -> float`` for one step, where
``obs`` is the Meta-World observation and ``self.env`` the Meta-World env, read through calls such
as ``self.env._get_pos_goal()``, ``self.env.tcp_center`` or ``self.env._get_site_pos("leftpad")``.

Untrusted code must not touch a live env, so the importer splits the file in two:

- every ``self.env...`` expression becomes a *state field* of the task (``state._get_pos_goal()``),
  evaluated after each step inside the env process. Only attribute reads, indexing and calls of
  getter methods (``_get_*``, ``get_*``, ``touching_*``, MuJoCo's ``body/site/geom/joint``) with
  constant arguments qualify: nothing that changes the simulation can be written this way;
- the rest of the function runs as an ordinary untrusted reward program (static checks, sandbox),
  the expressions replaced by ``self["t2r_<k>"]`` lookups, called once per transition of the batch.

The result is a task YAML (the task plus those fields) and a reward program, written side by
side, that every rewardgen command accepts.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from rewardgen.errors import RewardgenError
from rewardgen.programs.checks import CodeCheckError, static_check
from rewardgen.tasks import FieldSpec, TaskSpec, get_task, save_task_file

__all__ = ["ENTRY", "VERSION_NOTE", "Text2RewardImport", "convert_text2reward", "import_text2reward"]

ENTRY = "compute_dense_reward"
_GETTER_PREFIXES = ("_get_", "get_", "touching_")
_MUJOCO_ACCESSORS = frozenset({"body", "site", "geom", "joint"})
_FIELD = "t2r_{}"


def _is_self_env(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "env"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def _chain_root(node: ast.AST) -> ast.AST:
    """The innermost object of an attribute / index / call chain (``self.env`` for env reads)."""
    while True:
        if _is_self_env(node):
            return node
        if isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return node


def _constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float | str | bool) or node.value is None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _constant(node.operand)
    if isinstance(node, ast.Slice):
        return all(p is None or _constant(p) for p in (node.lower, node.upper, node.step))
    if isinstance(node, ast.Tuple):
        return all(_constant(e) for e in node.elts)
    return False


def _env_readable(node: ast.AST) -> bool:
    """Whether an expression on ``self.env`` only reads state: safe to evaluate in the env."""
    while not _is_self_env(node):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("__"):
                return False
            node = node.value
        elif isinstance(node, ast.Subscript):
            if not _constant(node.slice):
                return False
            node = node.value
        elif isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Attribute) or node.keywords:
                return False
            if not (func.attr.startswith(_GETTER_PREFIXES) or func.attr in _MUJOCO_ACCESSORS):
                return False
            if not all(_constant(a) for a in node.args):
                return False
            node = func.value
        else:
            return False
    return True


class _EnvReads(ast.NodeTransformer):
    """Replace each maximal readable ``self.env`` expression by ``self["t2r_<k>"]``."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}  # expression text -> field name
        self.problems: list[str] = []
        self._outer: ast.AST | None = None  # the unreadable chain being looked into
        self._methods: set[int] = set()  # attributes called as methods: never read as values

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self._methods = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
        return self.generic_visit(node)

    def _replace(self, node: ast.expr) -> ast.AST:
        text = ast.unparse(node)
        name = self.fields.setdefault(text, _FIELD.format(len(self.fields)))
        new = ast.Subscript(value=ast.Name("self", ast.Load()), slice=ast.Constant(name), ctx=ast.Load())
        return ast.copy_location(new, node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        chain = isinstance(node, ast.Attribute | ast.Subscript | ast.Call)
        if chain and not _is_self_env(node) and _is_self_env(_chain_root(node)):
            value = isinstance(getattr(node, "ctx", ast.Load()), ast.Load) and id(node) not in self._methods
            if value and _env_readable(node):
                return self._replace(node)  # type: ignore[arg-type]
            if self._outer is None:  # e.g. self.env.tcp_center.copy(): its prefix may still qualify
                self._outer = node
                try:
                    return super().generic_visit(node)
                finally:
                    self._outer = None
        if _is_self_env(node):
            self.problems.append(
                f"line {node.lineno}: '{ast.unparse(self._outer or node)}' is not a read-only "
                "self.env expression (allowed: attributes, constant indexing, and getter calls "
                "such as self.env._get_site_pos('leftpad') with constant arguments)"
            )
            return node
        return super().generic_visit(node)


WRAPPER = '''

def compute_reward(obs, action, next_obs, info):
    """rewardgen's batched entry point around Text2Reward's per-step compute_dense_reward."""
    n = len(next_obs)
    total = np.zeros(n)
    for i in range(n):
        row = {{{row}}}
        total[i] = float({entry}(row, action[i], next_obs[i]))
    return total, {{"text2reward": total}}
'''


def _drop_unused_imports(tree: ast.Module) -> list[str]:
    """Remove top-level imports whose names the code never uses (Text2Reward's files carry some,
    e.g. ``from scipy.spatial import distance``); returns the dropped statements."""
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    dropped: list[str] = []
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            keep = [
                a
                for a in node.names
                if (a.asname or (a.name.split(".")[0] if isinstance(node, ast.Import) else a.name)) in used
            ]
            if len(keep) < len(node.names):
                gone = [a for a in node.names if a not in keep]
                dropped.append(ast.unparse(type(node)(**{**node.__dict__, "names": gone})))
                if not keep:
                    continue
                node.names = keep
        body.append(node)
    tree.body = body
    return dropped


def convert_text2reward(source: str) -> tuple[str, dict[str, str]]:
    """Text2Reward source -> (rewardgen reward program source, ``{field: self.env expression}``).

    Raises :class:`CodeCheckError` naming every line that cannot be converted or is refused.

    Example:
        >>> src, fields = convert_text2reward(
        ...     "import numpy as np\\n"
        ...     "def compute_dense_reward(self, action, obs):\\n"
        ...     "    return -np.linalg.norm(self.env.tcp_center - obs[4:7])\\n")
        >>> fields
        {'t2r_0': 'self.env.tcp_center'}
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise CodeCheckError(f"line {exc.lineno}: syntax error: {exc.msg}") from None
    entry = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == ENTRY), None)
    if entry is None:
        raise CodeCheckError(
            f"no function {ENTRY}(self, action, obs) in the file: is it Text2Reward's format?"
        )
    args = [a.arg for a in entry.args.args]
    if args[:1] != ["self"] or len(args) != 3:
        raise CodeCheckError(f"{ENTRY} must take (self, action, obs), it takes ({', '.join(args)})")
    abstract = sorted(
        {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
        }
        - {"env"}
    )
    general = [a for a in abstract if a in ("robot", "goal_position") or a.startswith("obj")]
    if general and not any(_is_self_env(n) for n in ast.walk(tree)):
        raise CodeCheckError(
            f"this is Text2Reward's general format (it reads {', '.join('self.' + a for a in general[:4])}, "
            "an abstract robot API): rewardgen converts its Meta-World specific.py files, which read "
            "self.env; use the specific.py of the same task"
        )
    reads = _EnvReads()
    tree = reads.visit(tree)
    problems = list(reads.problems)
    for node in ast.walk(tree):  # `self` is now a dict of field values: nothing else may use it
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            if node.attr == "env":
                continue  # reported above, with the expression it is part of
            problems.append(f"line {node.lineno}: 'self.{node.attr}' is not available (only self.env.*)")
    if problems:  # each once, in the order of the file
        line = lambda text: int(text.split(":")[0].split()[1]) if text.startswith("line ") else 0  # noqa: E731
        raise CodeCheckError("; ".join(sorted(dict.fromkeys(problems), key=line)))
    fields = {name: text for text, name in reads.fields.items()}
    row = ", ".join(f"{n!r}: info[{n!r}][i]" for n in fields)
    dropped = _drop_unused_imports(tree)
    body = ast.unparse(tree)
    # Text2Reward ran its code with numpy in globals: some files use np without importing it
    header = (
        ""
        if "import numpy as np\n" in body
        else "import numpy as np  # added by rewardgen: Text2Reward ran its code with numpy in globals\n"
    )
    header += "".join(f"# rewardgen dropped an import the code never uses: {d}\n" for d in dropped)
    original = "".join(f"# {line}".rstrip() + "\n" for line in source.splitlines())
    program = (
        header
        + ("\n" if header else "")
        + body
        + WRAPPER.format(row=row, entry=ENTRY)
        + "\n\n# The original, as written (comments included); each self.env read is a task field now:\n"
        + original
    )
    check = static_check(program)
    if not check.ok:
        raise CodeCheckError("refused by the static checks: " + "; ".join(check.problems))
    return program, fields


#: Said wherever a converted file's numbers are shown: the published files target other envs.
VERSION_NOTE = (
    "Text2Reward wrote its files for Meta-World v2 envs; the catalog runs Meta-World v3 "
    "(metaworld 3.x), so returns and success rates are measured there and may differ from the paper's"
)


class Text2RewardImport:
    """What :func:`import_text2reward` wrote: the task YAML, the reward program, the fields, and
    ``origin`` (the format, the original file's absolute path and sha256, the version note) for
    the run's manifest."""

    def __init__(
        self, task: TaskSpec, reward: Path, fields: dict[str, str], origin: dict[str, str] | None = None
    ):
        self.task, self.reward, self.fields = task, reward, fields
        self.origin = origin or {}

    def __repr__(self) -> str:
        return f"Text2RewardImport(task={self.task.path}, reward={self.reward}, fields={self.fields})"


def import_text2reward(
    path: str | Path, task: str | TaskSpec, out: str | Path | None = None
) -> Text2RewardImport:
    """Convert a Text2Reward reward file for ``task`` (a Meta-World task such as
    ``metaworld-drawer-open``) into ``out`` (default: beside the file): ``<stem>.rewardgen.py``
    and ``<stem>.task.yaml``. Train on them like any task and reward::

        imp = import_text2reward("drawer_open.py", "metaworld-drawer-open")
        spec = ProgramSpec.from_file(imp.reward, sandbox=SandboxLimits())
        train(TrainConfig(task=str(imp.task.path), reward=spec))
    """

    src = Path(path)
    if not src.is_file():
        raise RewardgenError(f"Text2Reward file '{src}' not found")
    spec = get_task(task)
    program, fields = convert_text2reward(src.read_text())
    folder = Path(out) if out is not None else src.parent
    folder.mkdir(parents=True, exist_ok=True)
    reward_path = folder / f"{src.stem}.rewardgen.py"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    reward_path.write_text(
        f"# Converted by rewardgen.interop.import_text2reward for task {spec.id} from\n"
        f"#   {src.resolve()} (sha256 {digest})\n# {VERSION_NOTE}.\n{program}"
    )
    origin = {"format": "text2reward", "path": str(src.resolve()), "sha256": digest, "note": VERSION_NOTE}
    extra = {
        name: FieldSpec(source="state." + text[len("self.env.") :], doc=f"Text2Reward's {text}")
        for name, text in fields.items()
    }
    derived = spec.model_copy(update={"fields": {**spec.fields, **extra}, "reward": reward_path.name})
    task_path = folder / f"{src.stem}.task.yaml"
    return Text2RewardImport(save_task_file(derived, task_path), reward_path, fields, origin)
