#!/usr/bin/env python
"""README's picture of the reward-hacking alarm in report.html (docs/alarm-badge.png): hopper-run
trained for 100k steps on an alive bonus (tests/data/hack_stand.py) and on the reference reward,
as two candidates of a report, photographed by Debian's chromium (apt install chromium
chromium-driver).

    python scripts/screenshot_alarm.py [--out docs/alarm-badge.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from rewardgen.programs import ProgramSpec
from rewardgen.synthesis import write_report
from rewardgen.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "alarm-badge.png")
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp(prefix="alarm-report-"))
    (run / "manifest.json").write_text(
        json.dumps({"task": "hopper-run", "method": "evolution", "config": {"samples": 2, "steps": 100_000}})
    )
    rewards = [ProgramSpec.from_file(ROOT / "tests" / "data" / "hack_stand.py"), None]
    for k, reward in enumerate(rewards):
        folder = run / "iter0" / f"cand{k}"
        config = TrainConfig(task="hopper-run", reward=reward, steps=100_000, video=False, eval_episodes=2)
        result = train(config, out=folder / "train", method="candidate")
        code = (folder / "train" / "reward.py").read_text()
        (folder / "candidate.json").write_text(
            json.dumps(
                {
                    "iteration": 0,
                    "index": k,
                    "status": "trained",
                    "code": code,
                    "eval": result.eval.to_dict(episodes=False),
                    "score": result.eval.success_metric_mean,
                    "steps": 100_000,
                }
            )
        )
        print(f"cand{k}: {result.alarm.summary()}")
    report = write_report(run)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(report.as_uri())
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        driver.find_element(By.TAG_NAME, "body").screenshot(str(args.out))
    finally:
        driver.quit()
    print(f"{args.out} (from {report})")


if __name__ == "__main__":
    main()
