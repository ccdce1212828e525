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

from rewardgen.errors import RewardgenError
from rewardgen.feedback import Option, make_judge
from rewardgen.feedback.server import answer_headers
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


def page_headers(url):
    """The headers the page sends with an answer (its CSRF secret), read from the page as a
    browser would; none when the page cannot be read."""
    status, page = request(url.split("api/")[0].split("?")[0])
    return answer_headers(page.decode()) if status == 200 else {}


def answer(url, data, headers=None):
    """POST an answer to the page at ``url`` as the page itself does."""
    return request(url + "api/answer", data, headers={**page_headers(url), **(headers or {})})


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


def publish_films(run, goal="hop backwards", n=2):
    """Round iter0 on the board with the films make_run wrote; returns the board."""
    board = RoundBoard(run)
    films = tuple({"id": f"cand{k}", "video": f"iter0/cand{k}/train/video.mp4"} for k in range(n))
    board.publish(PublishedRound("iter0", goal, films))
    return board


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
        got, data = answer(url, body)
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
    assert answer(url, ok)[0] == 200
    saved = answers.read_bytes()
    status, data = answer(url, {**ok, "best": "cand1", "ranking": []})
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
        for host in (
            f"127.0.0.1:{local.port}@evil.example",
            "127.0.0.1:x",
            "localhost/evil",
            "user@127.0.0.1",
        ):
            status, data = request(f"http://127.0.0.1:{local.port}/api/state", headers={"Host": host})
            assert status == 403, host  # the name a URL parser reads, not the text before the last ':'
        assert (
            request(f"http://127.0.0.1:{local.port}/api/state", headers={"Host": f"[::1]:{local.port}"})[0]
            == 200
        )
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
    publish_films(run, goal="hop")
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
        assert answer(url, {"round": "iter0", "best": "cand1", "worst": "cand0"})[0] == 200
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
        assert answer(server.url, {"round": "iter0", "best": "cand0", "worst": "cand1"})[0] == 200
        thread.join(10)
        assert result["c"].best == "cand0"
    finally:
        server.stop()
    assert Path(run / "iter0" / "cand0" / "train" / "video.webm").is_file()


def raw_post(port, head, body=b"", read_after_head=True):
    """Send a raw HTTP request (``head`` without its blank line) and return the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        return sock.recv(4096).split(b"\r\n", 1)[0].decode()


def test_answers_forged_by_other_pages_are_refused_and_change_nothing(open_round):
    """CSRF: another origin, another port, a form's content type, or no page secret: refused."""
    run, url, _ = open_round
    headers = page_headers(url)
    ok = {"round": "iter0", "best": "cand2", "worst": "cand0"}
    origin = url.rstrip("/")
    forged = [
        ({**headers, "Origin": "http://evil.example"}, 403, "not from http://evil.example"),
        ({**headers, "Origin": "http://127.0.0.1:1"}, 403, "only from the page itself"),  # another port
        ({**headers, "Origin": "null"}, 403, "only from the page itself"),
        ({**headers, "Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
        ({**headers, "Sec-Fetch-Site": "same-site"}, 403, "same-site"),
        ({**headers, "Content-Type": "text/plain"}, 415, "application/json"),
        ({**headers, "Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        ({"Content-Type": "application/json"}, 403, "secret"),
        ({**headers, "X-Rewardgen-CSRF": "guess"}, 403, "secret"),
        ({**headers, "X-Rewardgen-CSRF": "é" * 10}, 403, "secret"),  # not ASCII: no 500
    ]
    for extra, status, reason in forged:
        got, data = request(url + "api/answer", ok, headers=extra)
        assert (got, reason in data["detail"]) == (status, True), (extra, got, data)
    assert not (run / "preferences.jsonl").exists()
    # the page itself, as a browser sends it: its own origin, same-origin, JSON, its secret
    same = {**headers, "Origin": origin, "Sec-Fetch-Site": "same-origin"}
    assert request(url + "api/answer", ok, headers=same)[0] == 200


def test_the_page_secret_is_the_runs_and_outlives_a_restart(tmp_path):
    run, _ = make_run(tmp_path, n=2)
    first = PreferenceServer(run, port=0).start()
    try:
        secret = page_headers(first.url)["X-Rewardgen-CSRF"]
    finally:
        first.stop()
    second = PreferenceServer(run, port=0).start()
    try:  # an open tab keeps working after a resume
        assert page_headers(second.url)["X-Rewardgen-CSRF"] == secret and len(secret) >= 24
    finally:
        second.stop()
    assert oct((run / "preference_page.json").stat().st_mode & 0o777) == "0o600"


def test_a_large_body_is_refused_before_it_is_read(open_round):
    run, url, _ = open_round
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    headers = page_headers(url)
    head = (
        f"POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-Rewardgen-CSRF: {headers['X-Rewardgen-CSRF']}"
    )
    # 300 MB declared, nothing sent: the answer comes at once, on the declared length
    assert raw_post(port, head + "\r\nContent-Length: 300000000").endswith("413 Request Entity Too Large")
    # chunked: the server stops reading past 64 KB; we stop sending when it answers
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((head + "\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"%x\r\n" % 65536 + b"[" * 65536 + b"\r\n"
        sock.setblocking(False)
        reply = b""
        deadline = time.monotonic() + 60
        while not reply and sent < 200 * 2**20 and time.monotonic() < deadline:
            try:
                reply = sock.recv(4096)
                break
            except BlockingIOError:
                pass
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        reply = reply or sock.recv(4096)
    assert b"413" in reply.split(b"\r\n", 1)[0], reply[:200]
    assert sent < 32 * 2**20, sent  # not the whole 200 MB
    assert not (run / "preferences.jsonl").exists()


def test_malformed_answers_are_one_line_4xx_not_tracebacks(open_round, tmp_path):
    run, url, _ = open_round
    bad = [
        (b"[" * 30000 + b"]" * 30000, 400, "nested too deeply"),
        ({"round": "iter0", "best": "cand1", "worst": "cand0", "ranking": 0}, 400, "'ranking'"),
        ({"round": "iter0", "best": "cand1", "worst": "cand0", "words": 0}, 400, "'words'"),
        ({"round": "iter0", "best": "cand1", "worst": "cand0", "rater": False}, 400, "'rater'"),
        ({"round": "iter0", "best": 1, "worst": "cand0"}, 400, "'best'"),
        ({"round": "iter0", "best": "cand1", "worst": "cand0", "admin": True}, 400, "unknown field 'admin'"),
        ({"round": "iter0", "best": "cand1", "worst": "cand0", "words": "x" * 5000}, 400, "'words'"),
    ]
    for body, status, reason in bad:
        got, data = answer(url, body)
        assert (got, reason in data["detail"]) == (status, True), (str(body)[:80], got, data)
        assert "\n" not in data["detail"]
    assert not (run / "preferences.jsonl").exists()
    # a non-ASCII token (query or header) on a token server: 401, not a 500
    shared = PreferenceServer(make_run(tmp_path / "t", n=2)[0], host="127.0.0.1", port=0, token="tok").start()
    try:
        base = f"http://127.0.0.1:{shared.port}/"
        assert request(base + "api/state?token=%C3%A9t%C3%A9")[0] == 401
        port = shared.port
        status = raw_post(
            port, f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Rewardgen-Token: \xe9t\xe9"
        )
        assert status.endswith("401 Unauthorized"), status
    finally:
        shared.stop()


def test_a_raters_terminal_escapes_never_reach_the_console(tmp_path):
    run, options = make_run(tmp_path, n=2)
    shown = []
    judge = WebJudge(run, port=0, poll_s=0.02, show=shown.append)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("c", judge("iter0", options)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while judge.server is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        words = "runs well\x1b[2J\r\nINFO forged line\u202e"
        body = {
            "round": "iter0",
            "best": "cand1",
            "worst": "cand0",
            "rater": "ana\x1b[31m\nERROR x",
            "words": words,
        }
        assert answer(judge.server.url, body)[0] == 200
        thread.join(10)
    finally:
        judge.close()
    choice = result["c"]
    assert choice.rater == "ana[31mERROR x" and choice.words == "runs well[2J\nINFO forged line"
    assert all("\x1b" not in line and "\n" not in line.strip("\n") for line in shown), shown


def test_a_policy_without_a_video_is_left_out_and_cannot_be_picked(tmp_path):
    run, options = make_run(tmp_path, n=3)
    unfilmed = Option("cand3", note="evaluation stopped after 0 of 1 episodes")
    judge = WebJudge(run, port=0, poll_s=0.02, show=lambda line: None)
    thread = threading.Thread(target=lambda: judge("iter0", [*options, unfilmed]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while judge.server is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        url = judge.server.url
        state = request(url + "api/state")[1]["round"]
        assert [o["id"] for o in state["options"]] == ["cand0", "cand1", "cand2"]
        assert state["left_out"] == [{"id": "cand3", "note": "evaluation stopped after 0 of 1 episodes"}]
        status, data = answer(url, {"round": "iter0", "best": "cand3", "worst": "cand0"})
        assert status == 422 and "was not shown" in data["detail"]
        assert not (run / "preferences.jsonl").exists()
    finally:
        judge.close()
    # a round published without a film for a policy (an older run): that policy cannot be picked
    other = tmp_path / "other"
    other.mkdir()
    (other / "iter0").mkdir()
    shutil.copytree(run / "iter0", other / "iter0", dirs_exist_ok=True)
    films = ({"id": "cand0", "video": "iter0/cand0/train/video.mp4"}, {"id": "cand1"})
    RoundBoard(other).publish(PublishedRound("iter0", "", films))
    server = PreferenceServer(other, port=0).start()
    try:
        status, data = answer(server.url, {"round": "iter0", "best": "cand1", "worst": "cand0"})
        assert status == 422 and "cand1 has no video" in data["detail"]
        assert not (other / "preferences.jsonl").exists()
    finally:
        server.stop()


def test_the_terminal_judge_never_offers_a_policy_without_a_video(tmp_path):
    from rewardgen.feedback import TerminalJudge

    _run, options = make_run(tmp_path, n=2)
    shown = []
    answers = iter(["2", "1", ""])
    judge = TerminalJudge(ask=lambda q: next(answers), show=shown.append)
    choice = judge("iter0", [options[0], Option("cand9", note="filming stopped"), options[1]])
    assert (choice.best, choice.worst, choice.candidates) == ("cand1", "cand0", ("cand0", "cand1"))
    assert any("cand9 is left out" in line and "filming stopped" in line for line in shown)
    with pytest.raises(Exception, match="only 1 of 2 policies have a video"):
        judge("iter1", [options[0], Option("cand9")])


def test_the_page_keeps_its_goal_favicon_and_a_clean_url(tmp_path):
    run, _ = make_run(tmp_path, n=2)
    board = publish_films(run)
    from rewardgen.feedback import Choice

    board.store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand0", worst="cand1"))
    server = PreferenceServer(run, host="127.0.0.1", port=0, token="sesame").start()
    try:
        base = f"http://127.0.0.1:{server.port}/"
        state = request(base + "api/state?token=sesame")[1]
        assert state["round"] is None and state["goal"] == "hop backwards"  # no round open: the goal stays
        assert request(base + "favicon.ico?token=sesame")[0] == 204

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(base + "?token=sesame", timeout=10)
        assert redirect.value.code == 303 and redirect.value.headers["Location"] == "/"
        cookie = redirect.value.headers["Set-Cookie"]
        assert cookie.startswith(f"rewardgen_token_{server.port}=sesame") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        name_value = cookie.split(";")[0]
        status, page = request(base, headers={"Cookie": name_value})
        assert status == 200 and b"Send answer" in page
    finally:
        server.stop()


def test_a_resumed_search_serves_its_page_on_the_same_port(tmp_path):
    run, options = make_run(tmp_path, n=2)
    ports = []
    for round_id in ("iter0", "iter1"):
        judge = WebJudge(run, port=0, poll_s=0.02, show=lambda line: None)
        thread = threading.Thread(target=lambda j=judge, r=round_id: j(r, options), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while judge.server is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ports.append(judge.server.port)
        assert answer(judge.server.url, {"round": round_id, "best": "cand0", "worst": "cand1"})[0] == 200
        thread.join(10)
        judge.close()
    assert ports[0] == ports[1] != 0


def test_a_page_served_on_every_interface_prints_their_addresses(tmp_path):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    run, _ = make_run(tmp_path, n=2)
    server = PreferenceServer(run, host="0.0.0.0", port=0)
    try:
        assert any(u.startswith(f"http://{address}:{server.port}/?token=") for u in server.urls), server.urls
        assert not any("127.0.0.1" in u for u in server.urls)
    finally:
        server.sock.close()


def test_prefs_serve_help_is_plain_text():
    from typer.testing import CliRunner

    from rewardgen.cli import app

    result = CliRunner().invoke(app, ["prefs", "serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--judge web" in result.output and "``" not in result.output


def test_an_open_page_learns_that_the_search_ended_before_its_server_stops(tmp_path):
    run, _ = make_run(tmp_path, n=2)
    board = publish_films(run)
    from rewardgen.feedback import Choice

    board.store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand1", worst="cand0"))
    server = PreferenceServer(run, port=0).start()
    url = server.url
    assert request(url + "api/state")[1]["ended"] is None  # the page is open, the search runs
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="finished", best={"path": str(run / "iter0" / "cand1")})
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "report.html").write_text("<html></html>")
    stopper = threading.Thread(target=server.stop, kwargs={"linger_s": 20})
    stopper.start()
    time.sleep(0.5)
    assert stopper.is_alive()  # it waits for the open page's next look
    ended = request(url + "api/state")[1]["ended"]
    stopper.join(10)
    assert not stopper.is_alive()
    assert ended["status"] == "finished" and ended["best"]["id"] == "cand1" and ended["best_round"] == "iter0"
    assert ended["best"]["mp4"] == "video/iter0/cand1.mp4"
    assert ended["report"] == str((run / "report.html").resolve())


def room_round(tmp_path, quorum=None, wait_s=None, raters=("ana", "bob", "cai"), n=3):
    """Round iter0 (``n`` policies) open for a room of ``raters``: (run, judge, the judge
    thread's result, the thread, the lines it showed)."""
    run, options = make_run(tmp_path, n=n)
    lines = []
    judge = WebJudge(
        run,
        port=0,
        goal="hop",
        poll_s=0.02,
        show=lines.append,
        raters=list(raters),
        quorum=quorum,
        wait_s=wait_s,
    )
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("choice", judge("iter0", options)), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not judge.links_shown and time.monotonic() < deadline:
        time.sleep(0.05)
    return run, judge, result, thread, lines


def with_rater(link):
    """The headers a rater's page sends: its rater token (as the cookie would) and the page's secret."""
    token = link.split("rater=")[1]
    base = link.split("?")[0]
    return base, {**page_headers(base), "X-Rewardgen-Rater": token}


def test_a_room_of_raters_answers_each_from_their_own_link(tmp_path):
    run, judge, result, thread, lines = room_round(tmp_path, quorum=2)
    try:
        links = {line.split(":", 1)[0].strip(): line.split(": ", 1)[1] for line in lines if "?rater=" in line}
        assert set(links) == {"ana", "bob", "cai"} and len(set(links.values())) == 3  # a token each
        url = judge.server.url
        pick = {"round": "iter0", "best": "cand0", "worst": "cand2"}
        # no link: the page can be watched, not answered; a wrong link is refused outright
        assert answer(url, pick)[0] == 401
        assert request(url + "?rater=guessed")[0] == 401
        _status, state = request(url + "api/state")
        assert state["you"] is None and state["round"]["room"]["raters"] == ["ana", "bob", "cai"]
        base, ana = with_rater(links["ana"])
        _status, state = request(base + "api/state", headers={"X-Rewardgen-Rater": ana["X-Rewardgen-Rater"]})
        assert state["you"] == "ana" and state["round"]["room"]["quorum"] == 2
        # bob's page cannot answer for ana, and the name never comes from the body
        base, bob = with_rater(links["bob"])
        assert request(base + "api/answer", {**pick, "rater": "ana"}, headers=bob)[0] == 403
        assert request(base + "api/answer", {**pick, "words": "fast"}, headers=ana)[0] == 200
        assert request(base + "api/answer", pick, headers=ana)[0] == 409  # once per rater
        assert "choice" not in result and RoundBoard(run).pending().round == "iter0"  # 1 of 2
        assert request(base + "api/state", headers=ana)[1]["round"]["room"]["you_answered"]
        assert (
            request(base + "api/answer", {"round": "iter0", "best": "cand1", "worst": "cand2"}, headers=bob)[
                0
            ]
            == 200
        )
        thread.join(10)
        room = result["choice"]
        assert (room.best, room.worst, room.rater, room.words) == ("cand0", "cand2", "ana+bob", "ana: fast")
        kept = RoundBoard(run).room_store.answers("iter0")
        assert [(c.rater, c.best) for c in kept] == [("ana", "cand0"), ("bob", "cand1")]
        assert any("ana chose cand0" in line for line in lines)
    finally:
        judge.close()


def test_a_room_round_closes_at_its_wait_once_anyone_answered(tmp_path):
    run, judge, result, thread, _lines = room_round(tmp_path, wait_s=0.5)
    try:
        time.sleep(1.0)
        assert "choice" not in result  # nobody answered: the round stays open past its wait
        links = judge.links(RoundBoard(run).room())
        base, cai = with_rater(links["cai"])
        assert (
            request(base + "api/answer", {"round": "iter0", "best": "cand2", "worst": "cand0"}, headers=cai)[
                0
            ]
            == 200
        )
        thread.join(10)
        assert result["choice"].rater == "cai" and result["choice"].best == "cand2"
    finally:
        judge.close()
    with pytest.raises(RewardgenError, match="quorum must be from 1 to 2"):
        make_judge("web:raters=ana+bob,quorum=3", run=tmp_path)
    with pytest.raises(RewardgenError, match="add raters="):
        make_judge("web:quorum=1", run=tmp_path)
    assert make_judge("web:raters=3", run=tmp_path).raters == ("rater1", "rater2", "rater3")
