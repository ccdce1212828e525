"""ICPL with a person in the loop, in a real browser (Debian's chromium through Selenium): the
page loads a round, the videos play, the person picks with the keyboard, the search goes on to
the next round; a SIGKILL in the middle of that round resumes with the same page and videos, where
the person picks with the mouse on a phone-sized screen; the answers reach the next prompt.

Set REWARDGEN_SCREENSHOT_DIR to keep the screenshots (README's picture comes from here)."""

import dataclasses
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_icpl import FORWARD
from test_synthesis import GOOD, config

from rewardgen.feedback import PreferenceStore
from rewardgen.llm.testing import LoopbackLLMServer

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

CHILD = """
import json, sys
from pathlib import Path
from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.runs import RunDir
from rewardgen.synthesis import SearchConfig, synthesize

url, out, cache, cfg = sys.argv[1], Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
resumed = (out / "manifest.json").exists()
run = RunDir.open(out) if resumed else RunDir.create(cfg["task"], "icpl", {}, out=out)
client = LLMClient(LLMSettings(base_url=url, model="m", cache_path=cache))
synthesize(SearchConfig(**cfg), client, run, log=print)
print("SEARCH DONE", flush=True)
"""


@pytest.fixture
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None or not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("REWARDGEN_REQUIRE_BROWSER"):
            pytest.fail("the browser test needs selenium and Debian's chromium + chromium-driver (apt)")
        pytest.skip("no selenium or no chromium + chromedriver on this machine")
    driver = chromium(webdriver, Service)
    yield driver
    driver.quit()


def chromium(webdriver, service):
    """A headless chromium (another browser, with its own cookies, at each call)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.add_argument("--host-resolver-rules=MAP evil.example 127.0.0.1")  # an attacker's site
    return webdriver.Chrome(service=service(CHROMEDRIVER), options=options)


class Child:
    """The search in a child process, its printed lines collected as they come."""

    def __init__(self, args):
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None or not self.lines.empty(), "\n".join(self.seen[-30:])
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout} s:\n" + "\n".join(self.seen[-30:]))


def wait(driver, script, timeout=60, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or script}")


VIDEOS = "return Array.from(document.querySelectorAll('#grid video'))"


def assert_videos_play(driver):
    """Every video has frames (readyState >= 2), none failed, and each one's time advances."""
    wait(
        driver,
        VIDEOS + ".length > 0 && " + VIDEOS[7:] + ".every(v => v.readyState >= 2)",
        what="videos ready",
    )
    first = driver.execute_script(
        VIDEOS + ".map(v => [v.currentTime, v.error && v.error.code, v.currentSrc])"
    )
    time.sleep(1.0)
    later = driver.execute_script(VIDEOS + ".map(v => v.currentTime)")
    assert all(err is None for _, err, _ in first), first
    assert all(src.endswith(".webm") for _, _, src in first), first  # VP9: Chromium's and Firefox's own codec
    assert all(b != a for (a, _, _), b in zip(first, later, strict=True)), (first, later)  # playing
    # the MP4 fallback (H.264, for Safari) decodes too
    playable = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        const v = document.createElement('video'); v.muted = true;
        v.src = document.querySelector('#grid video source[type="video/mp4"]').src;
        v.oncanplay = () => done([v.canPlayType('video/mp4; codecs="avc1.64001E"'), v.videoWidth]);
        v.onerror = () => done(['error ' + v.error.code, 0]); v.load();"""
    )
    assert playable[0] in ("probably", "maybe") and playable[1] > 0, playable


def shot(driver, tmp_path, name):
    path = tmp_path / name
    driver.save_screenshot(str(path))
    keep = os.environ.get("REWARDGEN_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)


def test_icpl_with_a_person_in_a_browser_resumes_after_a_kill(tmp_path, browser):
    from selenium.webdriver.common.by import By

    cfg = config(method="icpl", judge="web:port=0", iterations=2, final_seeds=0, videos=0)
    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    with LoopbackLLMServer() as server:
        server.push([GOOD, FORWARD], [FORWARD, GOOD])
        args = [server.url, str(out), str(cache), json.dumps(dataclasses.asdict(cfg) | {"sandbox": None})]
        child = Child(args)
        url = child.wait_for("preference round iter0").rsplit(" at ", 1)[1]

        # round 1: the page loads, the videos play in sync, the keyboard picks and sends
        start = time.monotonic()
        browser.get(url)
        wait(browser, "return document.querySelectorAll('#grid .card').length == 2", what="two cards")
        assert time.monotonic() - start < 10
        assert browser.find_element(By.ID, "title").text == "Preference round 1 of 2"
        assert "Goal:" in browser.find_element(By.ID, "goal").text
        assert_videos_play(browser)
        body = browser.find_element(By.TAG_NAME, "body")
        for key in "1B2w":  # B and b alike
            body.send_keys(key)
        classes = browser.execute_script(
            "return Array.from(document.querySelectorAll('.card')).map(c => c.className)"
        )
        assert "best" in classes[0] and "worst" in classes[1], classes
        shot(browser, tmp_path, "preference-page.png")
        body.send_keys("\n")
        wait(
            browser, "return document.getElementById('status').textContent.startsWith('Saved')", what="saved"
        )
        first = PreferenceStore(out / "preferences.jsonl").for_round("iter0")
        assert (first.best, first.worst, first.judge) == ("cand0", "cand1", "web")

        # the search goes on: round 2's policies train, and the page shows them by itself
        child.wait_for("preference round iter1")
        wait(browser, "return document.getElementById('title').textContent == 'Preference round 2 of 2'", 30)
        films = {p: p.stat().st_mtime_ns for p in (out / "iter1").glob("cand*/train/video.*")}
        assert len(films) == 4  # an MP4 and its WebM copy for each policy
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()

        # resumed: round 1's answer is kept, round 2 comes back with the same videos
        child = Child(args)
        url = child.wait_for("preference round iter1").rsplit(" at ", 1)[1]
        assert not any("preference round iter0" in line for line in child.seen)
        browser.set_window_size(390, 844)  # a phone
        browser.get(url)
        wait(browser, "return document.getElementById('title').textContent == 'Preference round 2 of 2'")
        assert_videos_play(browser)
        assert {p: p.stat().st_mtime_ns for p in films} == films
        history = browser.find_element(By.ID, "history").text
        assert "round 1: cand0" in history
        layout = browser.execute_script(
            """const cards = document.querySelectorAll('.card');
            return [document.documentElement.scrollWidth <= window.innerWidth,
                    cards[0].getBoundingClientRect().top == cards[1].getBoundingClientRect().top]"""
        )
        assert layout == [True, True]  # no sideways scrolling; the two videos side by side
        shot(browser, tmp_path, "preference-page-phone.png")
        cards = browser.find_elements(By.CSS_SELECTOR, ".card")
        cards[1].find_element(By.CSS_SELECTOR, ".pick-best").click()
        cards[0].find_element(By.CSS_SELECTOR, ".pick-worst").click()
        browser.find_element(By.ID, "words").send_keys("the second one hops, the first one falls")
        browser.find_element(By.ID, "submit").click()
        child.wait_for("SEARCH DONE")
        assert child.proc.wait(30) == 0
        # the search's end: before its server stops, the page says so, with the best and the report
        wait(browser, "return document.getElementById('status').textContent.includes('has finished')", 10)
        ended = browser.find_element(By.ID, "waiting").text
        assert "Its best policy: cand1 of iter1" in ended and str(out.resolve() / "report.html") in ended
    answers = PreferenceStore(out / "preferences.jsonl").load()
    assert [(a.round, a.best, a.worst) for a in answers] == [
        ("iter0", "cand0", "cand1"),
        ("iter1", "cand1", "cand0"),
    ]
    assert answers[1].words == "the second one hops, the first one falls"
    # the second prompt learned from the first round: the preferred code first, the rejected after
    prompt = (out / "iter1" / "prompt.md").read_text()
    code = lambda reply: reply.split("```python\n")[1].split("```")[0].strip()  # noqa: E731
    assert prompt.index(code(GOOD)) < prompt.index("this reward least") < prompt.index(code(FORWARD))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["best"]["iteration"], summary["best"]["index"]) == (1, 1)  # round 2's preferred


ATTACK = """<!doctype html><html><body>
<iframe name="sink" style="display:none"></iframe>
<form id="f" method="POST" action="VICTIM/api/answer" enctype="text/plain" target="sink">
<input name='{"round":"iter0","best":"cand1","worst":"cand0","words":"forged by a form","x":"' value='"}'>
</form>
<script>
const url = "VICTIM/api/answer";
const body = JSON.stringify({round: "iter0", best: "cand1", worst: "cand0", words: "forged"});
const tries = [
  fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
              headers: {"Content-Type": "text/plain"}, body}),
  fetch(url, {method: "POST", mode: "no-cors", credentials: "include", body}),
  fetch(url, {method: "POST", credentials: "include",
              headers: {"Content-Type": "application/json", "X-Rewardgen-CSRF": "guess"}, body}),
  new Promise((ok) => ok(navigator.sendBeacon(url, new Blob([body], {type: "text/plain"})))),
];
document.getElementById("f").submit();
Promise.allSettled(tries).then(() => setTimeout(() => { document.title = "done"; }, 1500));
</script></body></html>"""


class AttackerSite:
    """Another web site (a page the victim has open in another tab): serves ATTACK aimed at the
    page at ``victim`` on its own port of 127.0.0.1."""

    def __init__(self, victim):
        import http.server

        page = ATTACK.replace("VICTIM", victim.rstrip("/")).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize("mode", ["loopback", "token"])
def test_other_pages_in_the_browser_cannot_answer_and_the_page_itself_can(tmp_path, browser, mode):
    """Forged answers from another site and from another port of this machine (a form, no-cors
    and CORS fetches, a beacon) are refused with nothing written; the page itself answers with
    its keys in either case, keeps its Send button off while its server is down, and reconnects."""
    from selenium.webdriver.common.by import By
    from test_prefs_web import make_run, publish_films

    from rewardgen.feedback.web import PreferenceServer

    run, _ = make_run(tmp_path, n=2)
    publish_films(run)
    token = "sesame" if mode == "token" else None
    server = PreferenceServer(run, port=0, token=token).start()
    victim = f"http://127.0.0.1:{server.port}/"
    attacker = AttackerSite(victim)
    try:
        browser.get(server.url)  # the victim opened the page (in token mode: its cookie is set)
        wait(browser, "return document.querySelectorAll('#grid .card').length == 2", what="two cards")
        assert "token" not in browser.current_url  # the token left the address bar
        for site in (f"http://evil.example:{attacker.port}/", f"http://localhost:{attacker.port}/"):
            browser.get(site)
            wait(browser, "return document.title == 'done'", 30, what=f"the attack from {site}")
            assert not (run / "preferences.jsonl").exists(), site
        browser.get(victim)
        wait(browser, "return document.querySelectorAll('#grid .card').length == 2", what="two cards")
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys("b")  # before choosing a policy: the page says what to do
        assert "Choose a policy first" in browser.find_element(By.ID, "status").text
        for key in "1B2W":
            body.send_keys(key)
        submit = browser.find_element(By.ID, "submit")
        assert submit.is_enabled()
        port = server.port
        server.stop()  # the server goes away: Send is off, and the page says why
        wait(browser, "return document.getElementById('submit').disabled", 10, what="Send disabled")
        assert "not answering" in browser.find_element(By.ID, "status").text
        server = PreferenceServer(run, port=0, token=token, prefer=port).start()
        assert server.port == port
        wait(browser, "return !document.getElementById('submit').disabled", 10, what="Send enabled again")
        body.send_keys("\n")
        wait(
            browser, "return document.getElementById('status').textContent.startsWith('Saved')", what="saved"
        )
        time.sleep(2.5)  # a poll later (the page asks every 2 s), the person can still read it
        assert browser.find_element(By.ID, "status").text.startswith("Saved: cand0 best, cand1 worst")
    finally:
        attacker.close()
        server.stop()
    answers = PreferenceStore(run / "preferences.jsonl").load()
    assert [(a.best, a.worst, a.words) for a in answers] == [("cand0", "cand1", "")]


def test_two_raters_in_two_browsers_answer_the_same_round_and_a_third_page_cannot(tmp_path, browser):
    """A room of two: each rater's browser opens their own link (the token moves to a cookie),
    answers with the keyboard and is told to wait for the other; the round closes with both
    answers. A third browser with no link sees the round and who has answered, but its answer
    is refused, and nothing it sends is saved under anyone's name."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from test_prefs_web import room_round

    from rewardgen.feedback.store import RoundBoard

    run, judge, result, thread, _lines = room_round(tmp_path, raters=("ana", "bob"), n=2)
    links = judge.links(RoundBoard(run).room())
    from selenium.webdriver.chrome.service import Service

    others = []
    try:
        for _ in range(2):
            options_ = webdriver.ChromeOptions()
            options_.binary_location = CHROMIUM
            for arg in (
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ):
                options_.add_argument(arg)
            others.append(webdriver.Chrome(service=Service(CHROMEDRIVER), options=options_))
        bob_browser, stranger = others
        cards = "return document.querySelectorAll('#grid .card').length == 2"
        for driver, name in ((browser, "ana"), (bob_browser, "bob")):
            driver.get(links[name])
            wait(driver, cards, what=f"{name}'s two cards")
            assert "rater=" not in driver.current_url  # the token left the address bar
            assert f"You are {name}" in driver.find_element(By.ID, "room").text
        stranger.get(judge.server.url)
        wait(stranger, cards, what="the stranger's two cards")
        assert "no rater link" in stranger.find_element(By.ID, "room").text
        body = stranger.find_element(By.TAG_NAME, "body")
        for key in "1B2W\n":
            body.send_keys(key)
        wait(
            stranger,
            "return document.getElementById('status').textContent.startsWith('Not saved')",
            what="refused",
        )
        assert "your own rater link" in stranger.find_element(By.ID, "status").text
        for driver, keys in ((browser, "1B2W"), (bob_browser, "2B1W")):
            body = driver.find_element(By.TAG_NAME, "body")
            for key in keys:
                body.send_keys(key)
            if driver is browser:
                driver.find_element(By.ID, "words").send_keys("the first one jumps")
                body.send_keys("\n")
                wait(
                    driver,
                    "return document.getElementById('status').textContent.includes('other raters')",
                    what="waiting",
                )
                wait(
                    bob_browser,
                    "return document.getElementById('room').textContent.includes('ana ✓')",
                    what="ana ✓",
                )
            else:
                driver.find_element(By.ID, "submit").click()
        thread.join(30)
        room = result["choice"]
        assert (room.rater, room.words) == ("ana+bob", "ana: the first one jumps")
        kept = RoundBoard(run).room_store.answers("iter0")
        assert [(c.rater, c.best, c.worst) for c in kept] == [
            ("ana", "cand0", "cand1"),
            ("bob", "cand1", "cand0"),
        ]
    finally:
        for driver in others:
            driver.quit()
        judge.close()
