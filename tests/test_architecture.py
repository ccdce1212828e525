"""The seams a maintainer builds on: the public names at the top (lazy, so ``import rewardgen``
stays light), configs documented where ``help()`` finds them, one owner of the search's stop
signal, and one run life (:class:`RunWatch`) that every back end drives."""

import dataclasses
import json
import os
import pydoc
import subprocess
import sys
import time

import pytest

import rewardgen
from rewardgen.runs import RunDir, StopSignal
from rewardgen.synthesis import SearchConfig
from rewardgen.tasks import get_task
from rewardgen.training import OverBudgetError, TrainConfig
from rewardgen.training.lifecycle import RunWatch


def test_import_rewardgen_is_light_and_the_public_names_load_on_first_use():
    code = (
        "import sys, rewardgen\n"
        "heavy = [m for m in ('torch', 'gymnasium', 'stable_baselines3', 'mujoco') if m in sys.modules]\n"
        "from rewardgen import RewardFn, TrainConfig, train, get_task\n"
        "print(heavy, 'torch' in sys.modules, get_task('hopper-jump').metric.line)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "False", "1.6"]  # TrainConfig and train need no torch either


@pytest.mark.parametrize("name", sorted(rewardgen.PUBLIC))
def test_each_public_name_is_the_sub_packages_own(name):
    value = getattr(rewardgen, name)
    home = __import__(rewardgen.PUBLIC[name], fromlist=[name])
    assert value is getattr(home, name) and name in home.__all__
    assert name in rewardgen.__all__ and name in dir(rewardgen)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'RewardFunction'"):
        rewardgen.RewardFunction  # noqa: B018


@pytest.mark.parametrize("config", [TrainConfig, SearchConfig])
def test_every_config_field_is_documented_where_help_shows_it(config):
    shown = pydoc.render_doc(config, renderer=pydoc.plaintext)
    attributes = config.__doc__.split("Attributes:")[1].split("Example:")[0]
    for f in dataclasses.fields(config):
        assert f"\n        {f.name}: " in attributes, f"{config.__name__}.{f.name} is not documented"
        assert f"{f.name}: " in shown


def test_the_stop_signal_keeps_its_first_reason_and_is_found_from_any_candidate(tmp_path):
    signal = StopSignal.of_candidate(tmp_path / "iter1" / "cand3")
    assert signal.path == tmp_path / RunDir.STOP
    assert str(signal) == os.fspath(signal) == str(signal.path)  # what a TrainConfig's stop_file holds
    assert StopSignal.of_candidate(tmp_path / "final" / "seed2").path == signal.path
    assert signal.reason() is None and not signal.requested() and signal.asked_at() is None
    signal.request("iter1/cand3 succeeded")
    signal.request("the search's time budget of 5m00s is spent")
    assert signal.requested() and signal.reason() == "iter1/cand3 succeeded"
    assert abs(signal.asked_at() - time.time()) < 60
    signal.path.write_text("")  # written by hand, empty: still a request
    assert signal.reason() == "asked to stop"
    signal.clear()
    signal.clear()  # twice is fine
    assert not signal.requested()


class Evaluator:
    """Stands in for PeriodicEvaluator: succeeds from ``succeed_at`` steps on."""

    def __init__(self, succeed_at):
        self.succeed_at, self.rows, self.spent_s, self.closed = succeed_at, [], 1.5, 0

    def __call__(self, policy, timesteps, wall_s):
        row = {"timesteps": timesteps, "wall_time_s": wall_s, "success_rate": 1.0, "succeeded": 0}
        row["succeeded"] = int(timesteps >= self.succeed_at)
        self.rows.append(row)
        return row

    def first_success(self):
        return next((r for r in self.rows if r["succeeded"]), None)

    def close(self):
        self.closed += 1


class Writer:
    def __init__(self):
        self.rows, self.closed = [], 0

    def write(self, row):
        self.rows.append(row)

    def close(self):
        self.closed += 1


def episode(env_return=1.0):
    return {
        "env_return": env_return,
        "reward_return": 2.0,
        "length": 10,
        "metrics": {"success_metric": 0.5},
        "components": {},
    }


def test_the_run_watch_logs_evaluates_stops_at_success_and_records_it(tmp_path):
    spec = get_task("hopper-jump")
    run = RunDir.create(spec.id, "train", {}, out=tmp_path / "run")
    evaluator, writer = Evaluator(succeed_at=40_000), Writer()
    watch = RunWatch(spec, 200_000, writer, evaluator, eval_every=20_000, stop_on_success=True)
    watch.begin(0)
    assert watch.episodes_done([episode()], 500) is None  # under log_every (2,000 steps)
    row = watch.episodes_done([episode(3.0)], 2_048)
    assert row["timesteps"] == 2_048 and row["episodes"] == 2 and writer.rows == [row]
    assert not watch.eval_due(19_999) and watch.eval_due(20_480)
    watch.evaluate(object(), 20_480)
    assert not watch.should_stop(20_480) and not watch.eval_due(30_000)
    watch.evaluate(object(), 40_960)
    assert watch.should_stop(40_961) and watch.stopped == "succeeded"
    assert watch.end(run, 40_960, TrainConfig(spec.id), time.monotonic()) == 1.5  # the evals' time
    manifest = json.loads(run.file(RunDir.MANIFEST).read_text())
    assert manifest["trained_steps"] == 40_960 and manifest["stopped_early"] == "succeeded"
    assert manifest["first_success"]["timesteps"] == 40_960
    assert writer.closed == 1 and evaluator.closed == 1
    watch.close()  # once is enough
    assert writer.closed == 1


def test_the_run_watch_stops_at_the_searchs_signal_and_at_its_deadline(tmp_path):
    spec = get_task("hopper-jump")
    signal = StopSignal.of_search(tmp_path)
    watch = RunWatch(spec, 100_000, Writer(), signal=signal)
    assert not watch.poll_signal() and not watch.eval_due(50_000)  # no evaluator: never due
    signal.request("iter0/cand1 succeeded")
    assert not watch.should_stop(1)  # read at a rollout's end, not every step
    assert watch.poll_signal() and watch.should_stop(1) and watch.stopped == "iter0/cand1 succeeded"

    run = RunDir.create(spec.id, "train", {}, out=tmp_path / "late")
    late = RunWatch(spec, 100_000, Writer(), deadline=time.monotonic() - 1)
    assert not late.should_stop(100_000)  # its steps are done: nothing to cut
    assert late.should_stop(50_000) and late.over
    with pytest.raises(OverBudgetError, match="after 50,000 of 100,000 training steps"):
        late.end(run, 50_000, TrainConfig(spec.id, time_budget_s=10), time.monotonic() - 11)
    assert json.loads(run.file(RunDir.MANIFEST).read_text())["status"] == "failed"


def test_old_import_paths_work_for_this_release_and_say_where_the_module_went():
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as said:\n"
        "    from rewardgen.train import TrainConfig\n"
        "    from rewardgen.train.sf_settings import SF_DEFAULTS\n"
        "    from rewardgen.train.alarm import hacking_verdict\n"
        "    from rewardgen.synthesis.prefppo import train_prefppo\n"
        "    from rewardgen.code.sandbox import SandboxRunner\n"
        "    from rewardgen.intrinsic import OniSpec\n"
        "import rewardgen, rewardgen.training, rewardgen.diagnostics.alarm\n"
        "from rewardgen.programs.sandbox import SandboxRunner as new_runner\n"
        "assert SandboxRunner is new_runner and OniSpec is rewardgen.OniSpec  # one copy of each\n"
        "assert TrainConfig is rewardgen.TrainConfig and hacking_verdict is rewardgen.hacking_verdict\n"
        "assert train_prefppo.__module__ == 'rewardgen.preference.prefppo'\n"
        "assert callable(rewardgen.train) and rewardgen.train is rewardgen.training.train\n"
        "assert rewardgen.training.__spec__.name == 'rewardgen.training'\n"
        "print('|'.join(str(w.message) for w in said))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    said = out.strip().split("|")
    assert said[0].startswith("rewardgen.train moved to rewardgen.training")
    assert "rewardgen.train.sf_settings moved to rewardgen.training.sf.settings" in said[1]
    assert "rewardgen.train.alarm moved to rewardgen.diagnostics.alarm" in said[2]
    assert "rewardgen.synthesis.prefppo moved to rewardgen.preference.prefppo" in said[3]
    assert "rewardgen.code moved to rewardgen.programs" in said[4]
    assert "rewardgen.intrinsic moved to rewardgen.oni" in said[-1]


def test_the_method_table_is_what_every_command_lists_and_its_commands_exist(capsys):
    from rewardgen.bench.config import DIRECT_METHODS
    from rewardgen.methods import METHODS, SEARCH_METHODS
    from rewardgen.synthesis.config import METHODS as SEARCH_CONFIG_METHODS
    from rewardgen.synthesis.methods import METHOD_TABLE

    assert SEARCH_CONFIG_METHODS == SEARCH_METHODS and set(METHOD_TABLE) == set(SEARCH_METHODS)
    assert (
        set(DIRECT_METHODS) == {"oni", "vlm"} and METHOD_TABLE["text2reward"].rounds(SearchConfig("x")) == 1
    )
    from rewardgen.cli import main

    main(["methods"])  # piped: one method a line, tab-separated
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [r[0] for r in rows] == list(METHODS)
    for _, _, _, _, command in rows:
        words = command.split()[1:]  # rewardgen <command> [<sub>] [--method NAME]
        words = words[: words.index("--method")] if "--method" in words else words
        try:
            main([*words, "--help"])
        except SystemExit as exc:
            assert exc.code in (0, None), command
        assert "Usage" in capsys.readouterr().out, command


def test_rewardgen_runs_reads_a_searchs_best_for_every_search_method_of_the_table(tmp_path):
    from rewardgen.methods import SEARCH_METHODS
    from rewardgen.runs.listing import summarize_run

    for method in SEARCH_METHODS:
        run = RunDir.create("hopper-jump", method, {}, out=tmp_path / method)
        run.update(best={"path": str(tmp_path / "iter1" / "cand2"), "eval": {"success_metric_mean": 1.7}})
        summary = summarize_run(run.path)
        assert summary.best == "iter1/cand2" and summary.success_metric == 1.7, method


def _rooms_imported() -> dict[str, set[str]]:
    """Each room of the package (a sub-package; a back end's package; a top-level module) ->
    the rooms its modules import, at the top of a file or inside a function."""
    import ast
    from pathlib import Path

    root = Path(rewardgen.__file__).parent

    def room(module: str) -> str:
        parts = module.split(".")
        if parts[1:2] == ["training"] and parts[2:3] in (["sb3"], ["sf"]):
            return ".".join(parts[:3])
        return ".".join(parts[:2])

    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module == "rewardgen":
            continue  # the public names: a table that points down at every room, lazily
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("rewardgen.") and room(name) != room(module):
                    edges.setdefault(room(module), set()).add(room(name))
    return edges


def test_the_rooms_import_each_other_without_a_circle():
    edges = _rooms_imported()
    assert "rewardgen.training.sf" in edges and "rewardgen.training" in edges["rewardgen.training.sf"]
    done: set[str] = set()

    def walk(room: str, path: tuple[str, ...]) -> None:
        assert room not in path, "an import circle: " + " -> ".join((*path, room))
        if room in done:
            return
        for nxt in sorted(edges.get(room, ())):
            walk(nxt, (*path, room))
        done.add(room)

    for room in sorted(edges):
        walk(room, ())
    # outside training, only the table names a back end (as text), with two known exceptions:
    # PrefPPO runs on SB3 only, and the search sizes a reward's batch by SB3's PPO rollout
    knows = {r for r, to in edges.items() if {"rewardgen.training.sb3", "rewardgen.training.sf"} & to}
    assert knows - {"rewardgen.training", "rewardgen.training.sb3", "rewardgen.training.sf"} == {
        "rewardgen.synthesis",
        "rewardgen.preference",
    }
