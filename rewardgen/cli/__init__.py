"""The ``rewardgen`` command. Each sub-command is a thin shell over the packages; one module per
command group: :mod:`~rewardgen.cli.train` (train, demo, tasks, check), :mod:`~rewardgen.cli.llm`
(llm ask and the LLM options every LLM command shares), :mod:`~rewardgen.cli.synth` (synthesize,
refine, report), :mod:`~rewardgen.cli.prefs` (prefs serve, prefppo), :mod:`~rewardgen.cli.vlm`
(vlm train, vlm score)."""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer
from rich.console import Console
from rich.markup import escape

from rewardgen.errors import RewardgenError

__all__ = ["app", "main", "parse_steps"]

app = typer.Typer(
    help="Turn a sentence into a reward and train an agent on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def parse_steps(value: str | int | None) -> int | None:
    """``"1e6"``, ``"200000"`` or ``"200_000"`` (or an int) -> int; anything else is a clear error."""
    if value is None:
        return None
    try:
        steps = float(str(value).replace("_", ""))
    except ValueError:
        raise RewardgenError(f"--steps must be a number such as 200000 or 1e6, got '{value}'") from None
    if steps <= 0 or steps != int(steps):
        raise RewardgenError(f"--steps must be a positive whole number, got '{value}'")
    return int(steps)


def parse_duration(value: str | None, option: str = "--time-budget") -> float | None:
    """``"5m"``, ``"90s"``, ``"1h30m"`` or ``"300"`` (seconds) -> seconds; anything else is a
    clear error.

    Example:
        >>> parse_duration("5m"), parse_duration("1h30m"), parse_duration("90")
        (300.0, 5400.0, 90.0)
    """
    import re

    if value is None:
        return None
    text = value.strip().lower().replace(" ", "")
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text)
    if not text or parts is None or not any(parts.groups()):
        raise RewardgenError(
            f"{option} must be a duration such as 5m, 90s, 1h30m or 300 (seconds), got '{value}'"
        )
    hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    total = 3600 * hours + 60 * minutes + seconds
    if total <= 0:
        raise RewardgenError(f"{option} must be positive, got '{value}'")
    return total


def _is_click(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's ``name`` class: from click itself or from the copy of click
    that newer typer releases vendor (``typer._click``), which click's own classes do not match."""
    return any(c.__name__ == name and "click" in c.__module__ for c in type(exc).__mro__)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a scheduler's kill, ``timeout``, a preemption, a closed terminal),
    handled like Ctrl-C: the run is marked interrupted and what was trained is saved."""


_SIGNALLED: list[int] = []


def _on_signal(signum: int, frame: object) -> None:
    """The first signal interrupts the command; the next ones do not interrupt its saving (the
    workers have :data:`~rewardgen.runs.processes.GRACE_S` for it); a third ends it now."""
    _SIGNALLED.append(signum)
    if len(_SIGNALLED) == 1:
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
    if len(_SIGNALLED) == 2:
        err_console.print("stopping: the workers are saving what they trained (signal again to quit now)")
        return
    os._exit(128 + _SIGNALLED[0])


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _on_signal)
    from rewardgen.runs import ended_if_it_fails

    try:
        with ended_if_it_fails():  # no run this command began says running after it gave up
            code = app(args=argv, standalone_mode=False)
            if code == 130:  # typer turns KeyboardInterrupt (Ctrl-C, or a signal through ours) into this
                raise KeyboardInterrupt
        if isinstance(code, int) and code:  # a command's typer.Exit(code)
            sys.exit(code)
    except RewardgenError as exc:
        # the message is text, not markup: "pip install 'rewardgen[vlm]'" keeps its brackets
        message = f"[red]error:[/red] {escape(str(exc))}"
        err_console.print(message, markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if _is_click(exc, "ClickException"):  # usage errors: the usage line, the problem, exit 2
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if _is_click(exc, "Abort"):  # click turns Ctrl-C into Abort
            _interrupted()
        raise


def _interrupted() -> None:
    """One line and the signal's exit status (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    signum = _SIGNALLED[0] if _SIGNALLED else signal.SIGINT
    why = "interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
    err_console.print(f"{why}: the run directory keeps the model and metrics saved so far")
    sys.exit(128 + signum)


from rewardgen.cli import bench, llm, oni, prefs, runs, synth, train, vlm  # noqa: E402, F401  (registers the commands on `app`)
