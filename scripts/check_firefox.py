#!/usr/bin/env python
"""Does the preference page work in Firefox? (Chromium: tests/test_prefs_browser.py.)

Serves a round of three short videos, opens the page in headless Firefox and drives it over
Firefox's own Marionette protocol (no geckodriver needed: Debian packages Firefox ESR but not
geckodriver), then prints, for the WebM/VP9 copy the page plays and for the H.264 MP4 fallback,
whether Firefox decodes it and whether its time advances; then answers the round with the mouse
and prints whether the answer (sent with the page's CSRF secret) was saved.

    apt-get install firefox-esr && python scripts/check_firefox.py
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


class Marionette:
    """The few Marionette commands this check needs, over its length-prefixed JSON framing."""

    def __init__(self, port: int):
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.buffer = b""
        self.id = 0
        self._read()  # the greeting: {"applicationType": "gecko", "marionetteProtocol": 3}

    def _read(self) -> object:
        while b":" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        size, _, rest = self.buffer.partition(b":")
        while len(rest) < int(size):
            rest += self.sock.recv(65536)
        message, self.buffer = rest[: int(size)], rest[int(size) :]
        return json.loads(message)

    def call(self, name: str, params: dict | None = None) -> object:
        self.id += 1
        data = json.dumps([0, self.id, name, params or {}]).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data)
        _, _, error, result = self._read()  # type: ignore[misc]
        if error:
            raise RuntimeError(f"{name}: {error}")
        return result

    def script(self, source: str) -> object:
        return self.call("WebDriver:ExecuteScript", {"script": source, "args": []})["value"]  # type: ignore[index]


def main() -> int:
    from rewardgen.feedback import Option
    from rewardgen.feedback.web import WebJudge
    from rewardgen.runs import write_video

    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    if firefox is None:
        print("no Firefox on this machine: apt-get install firefox-esr")
        return 2
    version = subprocess.run([firefox, "--version"], capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="check_firefox-"))
    run = work / "run"
    options = []
    for k in range(3):
        folder = run / "iter0" / f"cand{k}" / "train"
        folder.mkdir(parents=True)
        frames = [np.full((240, 240, 3), (8 * f + 60 * k) % 255, np.uint8) for f in range(100)]
        write_video(frames, folder / "video.mp4", fps=20)
        options.append(Option(f"cand{k}", video=folder / "video.mp4"))
    (run / "manifest.json").write_text(json.dumps({"status": "running", "config": {}}))
    judge = WebJudge(run, port=0, show=lambda line: None)
    threading.Thread(target=judge, args=("iter0", options), daemon=True).start()
    while judge.server is None:
        time.sleep(0.05)
    port = _free_port()
    profile = work / "profile"
    profile.mkdir()
    (profile / "user.js").write_text(
        f'user_pref("marionette.port", {port});\nuser_pref("media.autoplay.default", 0);\n'
    )
    proc = subprocess.Popen(
        [firefox, "--headless", "--marionette", "--no-remote", "--profile", str(profile)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        browser = Marionette(port)
        browser.call("WebDriver:NewSession", {"capabilities": {}})
        browser.call("WebDriver:Navigate", {"url": judge.server.url})
        videos = "Array.from(document.querySelectorAll('#grid video'))"
        deadline = time.monotonic() + 30
        while not browser.script(f"return {videos}.length == 3 && {videos}.every(v => v.readyState >= 2)"):
            if time.monotonic() > deadline:
                print(
                    version,
                    "- the videos did not load:",
                    browser.script(
                        f"return {videos}.map(v => [v.currentSrc, v.readyState, v.error && v.error.code])"
                    ),
                )
                return 1
            time.sleep(0.2)
        first = browser.script(f"return {videos}.map(v => [v.currentSrc, v.currentTime])")
        time.sleep(1.0)
        later = browser.script(f"return {videos}.map(v => v.currentTime)")
        playing = all(b > a for (_, a), b in zip(first, later, strict=True))  # type: ignore[arg-type]
        webm = all(src.endswith(".webm") for src, _ in first)  # type: ignore[union-attr]
        mp4 = browser.script(
            """const v = document.createElement('video'); v.muted = true;
            v.src = document.querySelector('#grid source[type="video/mp4"]').src; v.load();
            return v.canPlayType('video/mp4; codecs="avc1.64001E"');"""
        )
        # the person answers with the mouse: the answer carries the page's secret and is saved
        browser.script(
            """const cards = document.querySelectorAll('.card');
            cards[2].querySelector('.pick-best').click(); cards[0].querySelector('.pick-worst').click();
            document.getElementById('submit').click(); return true;"""
        )
        answers = run / "preferences.jsonl"
        deadline = time.monotonic() + 30
        while not answers.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        saved = answers.is_file() and json.loads(answers.read_text().splitlines()[0])["best"] == "cand2"
        print(
            f"{version}: WebM/VP9 on the page {'plays' if webm and playing else 'does NOT play'} "
            f"(time advances in all 3: {playing}); H.264 MP4 fallback canPlayType: {mp4!r}; "
            f"an answer sent from the page is saved: {saved}"
        )
        browser.call("Marionette:Quit")
        return 0 if webm and playing and saved else 1
    finally:
        proc.kill()
        proc.wait()
        judge.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
