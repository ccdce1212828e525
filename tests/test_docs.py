"""The pages stay true: every example in README.md and docs/ runs or, where it needs what a test
machine has not (a GPU, an API key, a model download, a person at a browser), parses.

- Python blocks run as written (those that train use few steps already).
- Every ``rewardgen ...`` command line is parsed by the command line itself: an option renamed or
  removed, a command that is gone, a bad value for a choice fails here.
- The commands that need nothing more run: with the loopback LLM server in place of a model, and
  ``--steps`` cut to a few rollouts where they train (:data:`RUNS`).
- Every ``python scripts/X.py`` a page names exists, and its arguments parse.
- The site builds with warnings as errors (``make docs``: tests/test_docs.py::test_the_site_builds).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent
DOCS = [p for p in sorted((ROOT / "docs").rglob("*.md")) if "_build" not in p.parts and p.name != "README.md"]
PAGES = [ROOT / "README.md", *DOCS]


def blocks(lang: tuple[str, ...]) -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        for _fence, kind, body in re.findall(
            r"^(`{3,4})(\w*)\n(.*?)^\1$", page.read_text(), flags=re.S | re.M
        ):
            if kind in lang:
                found.append((page, body))
    return found


def command_lines() -> list[tuple[str, str]]:
    """(page, line) for every shell line of the pages: continuations joined, comments dropped."""
    lines = []
    for page, body in blocks(("bash", "sh", "shell")):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
            if line and not line.startswith("#"):
                lines.append((str(page.relative_to(ROOT)), line))
    return lines


def rewardgen_args(line: str) -> list[str] | None:
    """The arguments of a ``rewardgen`` command line (an env assignment or a venv path before
    it allowed), or None when the line runs something else."""
    words = shlex.split(line)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    if words and words[0].endswith("bin/rewardgen"):
        words[0] = "rewardgen"
    if len(words) > 2 and words[:2] == ["python", "scripts/scripted_search.py"] and "--" in words:
        return ["synthesize", *words[words.index("--") + 1 :]]  # it passes these to synthesize
    return words[1:] if words and words[0] == "rewardgen" else None


def cli_click():
    """The exceptions of the click the command line is built on (typer >= 0.20 has its own)."""
    from rewardgen.cli import app

    base = next(c for c in type(typer.main.get_command(app)).__mro__ if c.__name__ == "Command")
    return importlib.import_module(base.__module__.rsplit(".", 1)[0] + ".exceptions")


def parse(args: list[str]) -> Any:
    """Parse ``args`` as the command line would, down to the command that would run, without
    running it (click's context of that command)."""
    from rewardgen.cli import app

    command = typer.main.get_command(app)
    ctx = command.make_context("rewardgen", list(args))
    while hasattr(command, "resolve_command"):  # a group: on to its command
        protected = vars(ctx).get("_protected_args")  # click >= 8.2; older: protected_args
        protected = ctx.protected_args if protected is None else protected
        if not [*protected, *ctx.args]:
            break  # a group that runs on its own (`rewardgen runs`)
        name, sub, rest = command.resolve_command(ctx, [*protected, *ctx.args])
        assert sub is not None, f"no command {name!r}"
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


COMMANDS = [(page, line) for page, line in command_lines() if rewardgen_args(line) is not None]


def test_the_pages_hold_examples_of_every_method():
    assert len(COMMANDS) >= 40 and len(blocks(("python",))) >= 3
    shown = " ".join(line for _, line in COMMANDS)
    for method in ("text2reward", "evolution", "icpl"):
        assert f"--method {method}" in shown
    for command in ("prefppo", "vlm train", "oni train", "bench", "check", "runs", "llm ask"):
        assert f"rewardgen {command}" in shown


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}:{i}" for i, (p, _) in enumerate(COMMANDS)])
def test_every_command_line_parses(page, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("frame1.png", "frame2.png", "arms_up.png", "notes.yaml", "my_reward.py"):
        (tmp_path / name).write_text("")  # arguments that must name existing files
    args = rewardgen_args(line)
    assert args is not None
    try:
        parse(args)
    except cli_click().ClickException as exc:
        pytest.fail(f"{page}: `{line}` does not parse: {exc.format_message()}")


def test_a_renamed_option_is_caught():
    ck = cli_click()
    with pytest.raises(ck.NoSuchOption, match="--stepz"):
        parse(["train", "--task", "hopper-run", "--stepz", "1000"])
    with pytest.raises(ck.UsageError, match="synthesise"):
        parse(["synthesise", "--task", "hopper-run"])
    with pytest.raises(ck.BadParameter):
        parse(["synthesize", "--task", "hopper-run", "--samples", "many"])


def test_every_script_a_page_names_exists_and_takes_its_arguments():
    scripts = [(p, line) for p, line in command_lines() if line.startswith("python scripts/")]
    assert scripts
    for page, line in scripts:
        words = shlex.split(line)
        path = ROOT / words[1]
        assert path.is_file(), f"{page}: {words[1]} does not exist"
        if "--" in words:  # the rest goes to `rewardgen synthesize`: parsed above
            continue
        out = subprocess.run(
            [sys.executable, str(path), *words[2:], "--help"], capture_output=True, text=True, cwd=ROOT
        )
        assert out.returncode == 0, f"{page}: `{line}`: {out.stderr[-500:]}"


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the training example writes its run directory under runs/
    for page, block in blocks(("python",)):
        if "rewardgen.vlm" in block and importlib.util.find_spec("transformers") is None:
            continue  # the vlm extra is not on this stack (sample-factory's)
        exec(compile(block, str(page), "exec"), {})


def test_the_readme_reward_program_trains_on_its_task(tmp_path):
    from rewardgen.diagnostics.check import check_reward
    from rewardgen.programs import ProgramSpec

    program = next(b for p, b in blocks(("python",)) if p.name == "README.md" and "def compute_reward" in b)
    (tmp_path / "r.py").write_text(program)
    stats = check_reward(
        "halfcheetah-run-backward", ProgramSpec.from_file(tmp_path / "r.py"), steps=20, n_envs=2
    )
    assert {"total", "backward", "ctrl_cost"} == set(stats["terms"])


#: The commands the pages show that run here as written, but for their steps: (a pattern of the
#: line, the arguments that replace or join the page's). Training commands train a few rollouts.
RUNS = {
    r"^rewardgen check --task hopper-run --reward my_reward.py$": [],
    r"^rewardgen runs$": [],
    r"^rewardgen runs --task hopper --status failed$": [],
    r"^rewardgen bench --suite locomotion --methods evolution --seeds 1 --dry-run$": [],
    r"^rewardgen train --task halfcheetah-run-backward --reward my_reward.py": [
        "--steps",
        "2048",
        "--no-video",
    ],
    r'^rewardgen llm ask "Say hi" --llm-model gpt-4o-mini$': ["LLM"],
}


def test_the_commands_that_need_nothing_more_run(tmp_path, monkeypatch, capsys):
    from rewardgen.cli import main
    from rewardgen.llm.testing import LoopbackLLMServer

    monkeypatch.chdir(tmp_path)
    program = next(b for p, b in blocks(("python",)) if p.name == "README.md" and "def compute_reward" in b)
    (tmp_path / "my_reward.py").write_text(program)
    ran = set()
    with LoopbackLLMServer() as server:
        server.push(*["hi"] * 4)
        for page, line in COMMANDS:
            pattern = next((p for p in RUNS if re.search(p, line)), None)
            if pattern is None or (pattern, line) in ran:
                continue
            ran.add((pattern, line))
            args = rewardgen_args(line)
            extra = RUNS[pattern]
            if extra == ["LLM"]:
                args, extra = [a for a in args if a not in ("--llm-model", "gpt-4o-mini")], [
                    "--llm-base-url", server.url, "--llm-model", "loopback"
                ]  # fmt: skip
            if "--steps" in extra and "--steps" in args:
                i = args.index("--steps")
                args = args[:i] + args[i + 2 :]
            try:
                main([*args, *extra])
            except SystemExit as exc:
                assert exc.code in (0, None), f"{page}: `{line}` exited {exc.code}: {capsys.readouterr()}"
    assert len({p for p, _ in ran}) == len(RUNS), "a command of RUNS is no longer on any page"


@pytest.mark.skipif(importlib.util.find_spec("sphinx") is None, reason="the docs extra (make's .venv has it)")
def test_the_site_builds(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    page = (tmp_path / "api.html").read_text()
    assert 'id="rewardgen.rewards.RewardFn"' in page and 'id="rewardgen.training.TrainConfig"' in page


def test_the_readme_is_a_front_door_whose_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 8
    for link in links:
        assert link.startswith("http") or (ROOT / link).exists(), (
            f"README.md links to {link}, which is not there"
        )
    for page in DOCS:  # and each page's images and links to other files of the repository
        for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            assert link.startswith("http") or (page.parent / link).exists(), f"{page} links to {link}"
