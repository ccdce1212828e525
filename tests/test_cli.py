import pytest

from rewardgen.cli import main, parse_steps
from rewardgen.errors import RewardgenError


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_parse_steps():
    assert parse_steps("1e6") == 1_000_000
    assert parse_steps("200_000") == 200_000
    for bad in ("fast", "-5", "1.5"):
        with pytest.raises(RewardgenError, match="--steps"):
            parse_steps(bad)


def test_unknown_task_is_one_clear_line(capsys):
    code, text = run_cli(["train", "--task", "hoper-run", "--steps", "100"], capsys)
    assert code == 2
    assert "unknown task 'hoper-run': did you mean hopper-run" in text
    assert "Traceback" not in text


def test_bad_steps_value(capsys):
    code, text = run_cli(["train", "--task", "hopper-run", "--steps", "lots"], capsys)
    assert code == 2 and "--steps must be a number" in text


def test_tasks_lists_and_shows(capsys):
    main(["tasks", "--show", "hopper-jump"])
    out = capsys.readouterr().out
    assert 'info["torso_z"]' in out and "Goal:" in out


def test_check_command(capsys):
    main(["check", "--task", "hopper-run", "--steps", "30", "--n-envs", "2"])
    out = capsys.readouterr().out
    assert "survive" in out
    gap = float(out.split("max |reward - env reward| = ")[1].split()[0])
    assert gap < 1e-6
