"""The preference page's server: what it serves, what it refuses, and that a refused answer changes
nothing on disk. The browser drives it in test_prefs_browser.py."""

import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from rewardgen.feedback import Option, make_judge
from rewardgen.feedback.store import PublishedRound, RoundBoard
from rewardgen.feedback.web import PreferenceServer, WebJudge
from rewardgen.runs import write_video


def request(url, data=None, headers=None):
    """(status, JSON or bytes) of a GET, or of a POST when ``data`` is given."""
    body = data if isinstance(data, bytes) or data is None else json.dumps(data).encode()
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status, kind = resp.read(), resp.status, resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        raw, status, kind = exc.read(), exc.code, exc.headers.get("content-type", "")
    return status, json.loads(raw) if "json" in kind else raw


def make_run(tmp_path, n=3):
    """A run with n short videos in iter0 and an ICPL manifest."""
    run = tmp_path / "run"
    options = []
    for k in range(n):
        folder = run / "iter0" / f"cand{k}" / "train"
        folder.mkdir(parents=True)
        frames = [np.full((32, 32, 3), (f * 20 + k * 60) % 255, np.uint8) for f in range(12)]
        write_video(frames, folder / "video.mp4", 10)
        options.append(Option(f"cand{k}", video=folder / "video.mp4"))
    (run / "manifest.json").write_text(
        json.dumps(
            {
                "status": "running",
                "config": {"task": "hopper-run-backward", "method": "icpl", "iterations": 2},
            }
        )
    )
    return run, options


@pytest.fixture
def open_round(tmp_path):
    """A run with round iter0 open on a loopback server; yields (run, url, judge thread's result)."""
    run, options = make_run(tmp_path)
    judge = WebJudge(run, port=0, goal="hop backwards", poll_s=0.02, show=lambda line: None)
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("choice", judge("iter0", options)), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while judge.server is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert judge.server is not None, "the page did not start"
    yield run, judge.server.url, result
    judge.close()


def test_the_page_shows_the_round_and_serves_its_videos(open_round):
    _run, url, _ = open_round
    status, page = request(url)
    assert status == 200 and b"Send answer" in page
    status, state = request(url + "api/state")
    assert status == 200 and state["round"]["round"] == "iter0" and state["round"]["goal"] == "hop backwards"
    assert state["rounds_total"] == 2 and [o["id"] for o in state["round"]["options"]] == [
        "cand0",
        "cand1",
        "cand2",
    ]
    webm = state["round"]["options"][0]["webm"]
    status, data = request(url + webm)
    assert status == 200 and data[:4] == b"\x1a\x45\xdf\xa3"  # an EBML (WebM) header: VP9 for every browser
    status, data = request(url + state["round"]["options"][0]["mp4"])
    assert status == 200 and data[4:8] == b"ftyp"


def test_bad_answers_get_a_4xx_and_change_nothing(open_round):
    run, url, result = open_round
    answers = run / "preferences.jsonl"
    bad = [
        (b"{not json", 400, "not valid JSON"),
        ([1, 2], 400, "JSON object"),
        ({"round": "iter0", "best": "cand1"}, 400, "'worst'"),
        ({"round": "iter0", "best": "cand1", "worst": "cand1"}, 422, "must differ"),
        ({"round": "iter0", "best": "cand7", "worst": "cand1"}, 422, "was not shown"),
        ({"round": "iter5", "best": "cand1", "worst": "cand0"}, 409, "not the open round"),
        (
            {"round": "iter0", "best": "cand1", "worst": "cand0", "ranking": ["cand1", "cand0"]},
            422,
            "every policy",
        ),
        ({"round": "iter0", "best": "cand1", "worst": "cand0", "words": 3}, 400, "'words'"),
        (b"x" * 70_000, 413, "at most"),
    ]
    for body, status, reason in bad:
        got, data = request(url + "api/answer", body)
        assert (got, reason in data["detail"]) == (status, True), (body, got, data)
        assert "\n" not in data["detail"]  # one line
        assert not answers.exists() and "choice" not in result
    ok = {
        "round": "iter0",
        "best": "cand2",
        "worst": "cand0",
        "ranking": ["cand2", "cand1", "cand0"],
        "words": "hi",
    }
    assert request(url + "api/answer", ok)[0] == 200
    saved = answers.read_bytes()
    status, data = request(url + "api/answer", {**ok, "best": "cand1", "ranking": []})
    assert status == 409 and "already has an answer" in data["detail"]
    assert answers.read_bytes() == saved  # the duplicate changed nothing
    deadline = time.monotonic() + 10
    while "choice" not in result and time.monotonic() < deadline:
        time.sleep(0.05)
    choice = result["choice"]  # the waiting judge got the page's answer
    assert (choice.best, choice.worst, choice.ranking, choice.words, choice.judge) == (
        "cand2",
        "cand0",
        ("cand2", "cand1", "cand0"),
        "hi",
        "web",
    )
    status, state = request(url + "api/state")
    assert state["round"] is None and state["history"][0]["best"]["id"] == "cand2"


def test_only_videos_inside_the_run_are_served(tmp_path):
    run, options = make_run(tmp_path, n=2)
    outside = tmp_path / "secret.mp4"
    shutil.copy(options[0].video, outside)
    (run / "iter0" / "link.mp4").symlink_to(outside)
    board = RoundBoard(run)
    stored = [
        {"id": "ok", "video": "iter0/cand0/train/video.mp4"},
        {"id": "climb", "video": "../secret.mp4"},
        {"id": "absolute", "video": str(outside)},
        {"id": "symlink", "video": "iter0/link.mp4"},
    ]
    board.publish(PublishedRound("iter0", "", tuple(stored)))
    server = PreferenceServer(run, port=0).start()
    try:
        assert request(server.url + "video/iter0/ok.mp4")[0] == 200
        for name in ("climb", "absolute", "symlink"):
            status, data = request(server.url + f"video/iter0/{name}.mp4")
            assert status == 404 and "not a file inside the run" in data["detail"], name
        for path in (
            "video/iter0/..%2F..%2Fsecret.mp4",
            "video/..%2Fiter0/ok.mp4",
            "video/iter0/ok.txt",
            "manifest.json",
        ):
            assert request(server.url + path)[0] == 404, path
    finally:
        server.stop()


def non_loopback_address():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect(("192.0.2.254", 9))  # no packet is sent: this only picks the outgoing interface
        address = sock.getsockname()[0]
    except OSError:
        return None
    finally:
        sock.close()
    return None if address.startswith("127.") else address


def test_another_host_needs_the_token_and_loopback_answers_only_loopback(tmp_path):
    run, _ = make_run(tmp_path, n=2)
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    shared = PreferenceServer(run, host="0.0.0.0", port=0).start()
    local = PreferenceServer(run, port=0).start()
    try:
        assert shared.token and f"?token={shared.token}" in shared.url
        base = f"http://{address}:{shared.port}/"
        for path in ("", "api/state", "video/iter0/cand0.mp4"):
            status, data = request(base + path)
            assert status == 401 and "token" in data["detail"], path
        assert request(base + "api/state", headers={"X-Rewardgen-Token": "wrong"})[0] == 401
        assert request(base + "api/answer", {"round": "iter0", "best": "a", "worst": "b"})[0] == 401
        assert request(base + f"api/state?token={shared.token}")[0] == 200
        # the loopback-only server: a client from another address, or a page under a foreign
        # name (DNS rebinding), is refused
        assert local.token is None
        status, data = request(f"http://127.0.0.1:{local.port}/api/state", headers={"Host": "evil.example"})
        assert status == 403 and "only on this machine" in data["detail"]
        assert request(f"http://127.0.0.1:{local.port}/api/state")[0] == 200
    finally:
        shared.stop()
        local.stop()


def test_a_loopback_server_refuses_a_client_from_another_address(tmp_path):
    """Bound to every interface without a token (as a proxy in front might do), the server still
    answers only loopback clients."""
    from rewardgen.feedback.web import make_app

    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    run, _ = make_run(tmp_path, n=2)
    server = PreferenceServer(run, host="0.0.0.0", port=0, token="unused")
    server.app = make_app(run, token=None)  # no token: loopback clients only
    server.start()
    try:
        status, data = request(f"http://{address}:{server.port}/api/state", headers={"Host": "127.0.0.1"})
        assert status == 403 and "only on this machine" in data["detail"]
    finally:
        server.stop()


def test_the_web_judge_from_its_command_line_form(tmp_path):
    judge = make_judge("web:port=0", run=tmp_path, goal="hop")
    assert isinstance(judge, WebJudge) and judge.port == 0 and judge.goal == "hop"
    with pytest.raises(Exception, match="needs the run directory"):
        make_judge("web")
    with pytest.raises(Exception, match="port must be a number"):
        make_judge("web:port=http", run=tmp_path)
    with pytest.raises(Exception, match="takes host= and port="):
        make_judge("web:colour=red", run=tmp_path)


def test_prefs_serve_serves_a_run_from_the_command_line(tmp_path):
    import subprocess
    import sys

    run, _options = make_run(tmp_path, n=2)
    RoundBoard(run).publish(PublishedRound("iter0", "hop", ({"id": "cand0"}, {"id": "cand1"})))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardgen.cli", "prefs", "serve", str(run), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        line = proc.stdout.readline()
        url = line.split("preference page of")[1].split(": ", 1)[1].split(" ")[0]
        status, state = request(url + "api/state")
        assert status == 200 and state["round"]["round"] == "iter0"
        assert request(url + "api/answer", {"round": "iter0", "best": "cand1", "worst": "cand0"})[0] == 200
        assert json.loads((run / "preferences.jsonl").read_text())["best"] == "cand1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_missing_run_is_named(tmp_path):
    from rewardgen.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["prefs", "serve", str(tmp_path / "nope")])
    assert exc.value.code == 2


def test_the_answer_file_is_the_page_and_the_search_shared(tmp_path):
    """An answer written by `prefs serve` (another process) reaches a judge waiting without a server."""
    run, options = make_run(tmp_path, n=2)
    judge = WebJudge(run, serve=False, poll_s=0.02, show=lambda line: None)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("c", judge("iter0", options)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while RoundBoard(run).pending() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    server = PreferenceServer(run, port=0).start()
    try:
        assert (
            request(server.url + "api/answer", {"round": "iter0", "best": "cand0", "worst": "cand1"})[0]
            == 200
        )
        thread.join(10)
        assert result["c"].best == "cand0"
    finally:
        server.stop()
    assert Path(run / "iter0" / "cand0" / "train" / "video.webm").is_file()
