"""README.md stays true: its Python examples run as written."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = [m[1] for m in re.findall(r"^(`{3,4})python\n(.*?)^\1$", README, flags=re.S | re.M)]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.chdir(tmp_path)  # the training example writes its run directory under runs/
    assert len(BLOCKS) >= 2
    for block in BLOCKS:
        if "rewardgen.vlm" in block and importlib.util.find_spec("transformers") is None:
            continue  # the vlm extra is not on this stack (sample-factory's)
        exec(compile(block, "README.md", "exec"), {})


def test_readme_reward_program_trains_on_its_task(tmp_path):
    from rewardgen.diagnostics.check import check_reward
    from rewardgen.programs import ProgramSpec

    program = next(b for b in BLOCKS if "def compute_reward" in b)
    (tmp_path / "r.py").write_text(program)
    spec = ProgramSpec.from_file(tmp_path / "r.py")
    stats = check_reward("halfcheetah-run-backward", spec, steps=20, n_envs=2)
    assert {"total", "backward", "ctrl_cost"} == set(stats["terms"])
