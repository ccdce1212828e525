"""The preference page: a person compares a round's policies in a browser (``--judge web`` or
``rewardgen prefs serve RUN_DIR``).

The server reads and writes only the run: the published rounds (:class:`RoundBoard`) and the
answers (``preferences.jsonl``). So the page the search starts and one served by hand show the
same round, an answer survives a kill of either, and a resumed search puts the same videos back.

Security: the server binds 127.0.0.1 and then answers only loopback clients whose ``Host`` is
loopback (no DNS rebinding). On any other host every request needs the random token printed in
the URL (a query parameter, then a same-site cookie). Videos are found by round and policy id in
the board, never by a path from the request, and a stored path that leaves the run (``..``, an
absolute path, a symlink out of it) is refused. A bad answer (a stale round, a second answer, the
best equal to the worst, a policy that was not shown, malformed JSON) gets a 4xx with a one-line
reason and changes nothing on disk.
"""

import errno
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError, require
from rewardgen.feedback.judges import Option, _need_two
from rewardgen.feedback.store import Choice, DuplicateAnswerError, PublishedRound, RoundBoard

__all__ = ["PreferenceServer", "WebJudge", "make_app"]

PAGE = Path(__file__).with_name("page.html")
MAX_BODY = 64 * 1024
MAX_WORDS = 4000
VIDEO_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
COOKIE = "rewardgen_token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def inside_run(run: Path, rel: str) -> Path | None:
    """``rel`` as a file inside ``run``, or None when it is absolute, climbs out with ``..``, or
    resolves (through symlinks) outside the run.

    Example:
        >>> inside_run(Path("/tmp"), "../etc/passwd") is None, inside_run(Path("/tmp"), "/etc/passwd") is None
        (True, True)
    """
    candidate = Path(rel)
    if not rel or candidate.is_absolute() or ".." in candidate.parts:
        return None
    root = run.resolve()
    path = (root / candidate).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def make_app(run_path: Path, token: str | None = None) -> Any:
    """The page's FastAPI app over the run at ``run_path``; ``token`` (when the server is not
    loopback-only) is required on every request."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    except ImportError:
        raise RewardgenError(
            "the preference page needs the web extra: pip install 'rewardgen[web]' (FastAPI and uvicorn)"
        ) from None

    run = Path(run_path)
    board = RoundBoard(run)
    app = FastAPI(title="rewardgen preferences", docs_url=None, redoc_url=None, openapi_url=None)

    def refuse(status: int, reason: str) -> JSONResponse:
        return JSONResponse({"detail": reason}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        if token is None:  # loopback only: the client and the name it asked for
            client = request.client.host if request.client else ""
            host = (request.headers.get("host") or "").rsplit(":", 1)[0]
            if not is_loopback(client) or not is_loopback(host):
                return refuse(
                    403, "this page answers only on this machine (start it with --host to share it)"
                )
            given = None
        else:
            given = (
                request.query_params.get("token")
                or request.headers.get("x-rewardgen-token")
                or request.cookies.get(COOKIE)
            )
            if not given or not secrets.compare_digest(given, token):
                return refuse(401, "missing or wrong token: open the URL the command printed")
        response = await call_next(request)
        if token is not None and request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token stays on this page
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; media-src 'self'; frame-ancestors 'none'"
        )
        return response

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text())

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        return _state(run, board)

    @app.get("/video/{round_id}/{option_id}.{ext}")
    def video(round_id: str, option_id: str, ext: str) -> Any:
        published = board.get(round_id)
        option = published.option(option_id) if published else None
        if option is None or ext not in VIDEO_TYPES:
            return refuse(404, f"no video {option_id}.{ext} in round {round_id}")
        rel = option.get("webm" if ext == "webm" else "video")
        path = inside_run(run, rel) if rel else None
        if path is None:
            return refuse(404, f"the video of {option_id} is not a file inside the run")
        return FileResponse(path, media_type=VIDEO_TYPES[ext])

    @app.post("/api/answer")
    async def answer(request: Request) -> Any:
        body = await request.body()
        if len(body) > MAX_BODY:
            return refuse(413, f"an answer is at most {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return refuse(400, "the answer is not valid JSON")
        try:
            choice = _choice(board, data)
            board.store.add(choice)
        except DuplicateAnswerError as exc:
            return refuse(409, str(exc))
        except _Refused as exc:
            return refuse(exc.status, str(exc))
        except RewardgenError as exc:  # Choice's own checks
            return refuse(422, str(exc))
        return {"saved": True, "round": choice.round, "best": choice.best, "worst": choice.worst}

    return app


class _Refused(RewardgenError):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def _choice(board: RoundBoard, data: Any) -> Choice:
    """The answer in ``data`` as a Choice for the pending round, or the reason it is refused."""
    if not isinstance(data, dict):
        raise _Refused(400, "the answer must be a JSON object with round, best and worst")
    for key in ("round", "best", "worst"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _Refused(400, f"the answer needs '{key}' (a string)")
    ranking = data.get("ranking") or []
    words, rater = data.get("words") or "", data.get("rater") or ""
    if not isinstance(ranking, list) or not all(isinstance(r, str) for r in ranking):
        raise _Refused(400, "'ranking' must be a list of policy ids, best first")
    if not isinstance(words, str) or not isinstance(rater, str) or len(words) > MAX_WORDS or len(rater) > 100:
        raise _Refused(400, f"'words' (at most {MAX_WORDS} characters) and 'rater' must be text")
    pending = board.pending()
    if board.store.for_round(data["round"]) is not None:
        raise DuplicateAnswerError(f"round {data['round']} already has an answer")
    if pending is None or pending.round != data["round"]:
        now = f"round {pending.round} is open" if pending else "no round is open"
        raise _Refused(409, f"round {data['round']} is not the open round ({now}): reload the page")
    shown = tuple(o["id"] for o in pending.options)
    if ranking and sorted(ranking) != sorted(shown):
        raise _Refused(422, f"a ranking lists every policy of the round once: {', '.join(shown)}")
    if ranking and (ranking[0] != data["best"] or ranking[-1] != data["worst"]):
        raise _Refused(422, "a ranking starts with the best and ends with the worst")
    return Choice(
        round=pending.round,
        candidates=shown,
        best=data["best"],
        worst=data["worst"],
        ranking=tuple(ranking),
        words=words.strip(),
        judge="web",
        rater=rater.strip(),
    )


def _state(run: Path, board: RoundBoard) -> dict[str, Any]:
    """What the page shows: the open round, the earlier rounds' winners, the run's status."""
    manifest: dict[str, Any] = {}
    if (run / "manifest.json").is_file():
        try:
            manifest = json.loads((run / "manifest.json").read_text())
        except ValueError:
            manifest = {}
    config = manifest.get("config") or {}
    rounds = board.rounds()
    answers = {c.round: c for c in board.store.load()}
    pending = board.pending()

    def urls(r: PublishedRound, o: dict[str, str]) -> dict[str, str | None]:
        base = f"video/{r.round}/{o['id']}"
        return {
            "id": o["id"],
            "mp4": f"{base}.mp4" if o.get("video") else None,
            "webm": f"{base}.webm" if o.get("webm") else None,
        }

    history = []
    for number, r in enumerate(rounds, 1):
        c = answers.get(r.round)
        if c is not None:
            best = r.option(c.best) or {"id": c.best}
            history.append(
                {
                    "round": r.round,
                    "number": number,
                    "best": urls(r, best),
                    "worst": c.worst,
                    "words": c.words,
                }
            )
    open_round = None
    if pending is not None:
        open_round = {
            "round": pending.round,
            "number": next(n for n, r in enumerate(rounds, 1) if r.round == pending.round),
            "goal": pending.goal,
            "options": [urls(pending, o) for o in pending.options],
        }
    return {
        "run": run.name,
        "task": config.get("task") or manifest.get("task"),
        "goal": (pending.goal if pending else None) or config.get("goal") or "",
        "rounds_total": config.get("iterations") if config.get("method") == "icpl" else None,
        "status": manifest.get("status"),
        "round": open_round,
        "history": history,
    }


class PreferenceServer:
    """Serves the preference page of a run: in a background thread (:meth:`start`, as ICPL's web
    judge does) or in the foreground (:meth:`serve`, ``rewardgen prefs serve``). A host other than
    loopback gets a random token, which :attr:`url` carries.

    Example:
        >>> import tempfile
        >>> server = PreferenceServer(Path(tempfile.mkdtemp()), port=0).start()
        >>> server.url.startswith("http://127.0.0.1:")
        True
        >>> server.stop()
    """

    def __init__(self, run_path: Path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None):
        self.run_path, self.host = Path(run_path), host
        self.token = token or (None if is_loopback(host) else secrets.token_urlsafe(16))
        self.app = make_app(self.run_path, self.token)
        self.sock = _bind(host, port)
        self.port = self.sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("127.0.0.1", "localhost") else self.host
        if shown in ("0.0.0.0", "::"):
            shown = socket.gethostname()
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def _uvicorn(self) -> Any:
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        return self._server

    def start(self) -> "PreferenceServer":
        """Serve in a daemon thread; returns once the page answers."""
        server = self._uvicorn()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self.sock]}, daemon=True, name="rewardgen-prefs"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RewardgenError(f"the preference page did not start on {self.host}:{self.port}")
        return self

    def serve(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        self._uvicorn().run(sockets=[self.sock])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``: ``port``, or the next free one of the ten after it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    for p in [port] if port == 0 else range(port, port + 10):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, p))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise RewardgenError(f"cannot serve the preference page on {host}:{p}: {exc}") from None
            last = exc
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise RewardgenError(f"ports {port}-{port + 9} on {host} are all in use ({last}): pass another --port")


class WebJudge:
    """A person in a browser: each round's videos are published to the run's preference page and
    the judge waits for the answer the page writes to ``preferences.jsonl``. The page's server
    starts with the first round (``serve=False`` when ``rewardgen prefs serve`` serves the run).

    Example:
        >>> import tempfile
        >>> judge = WebJudge(Path(tempfile.mkdtemp()), serve=False, poll_s=0.01)
        >>> judge.board.store.add(Choice(round="iter0", candidates=("a", "b"), best="b", worst="a"))
        >>> judge("iter0", [Option("a"), Option("b")]).best  # answered already: no wait
        'b'
    """

    needs_videos = True

    def __init__(
        self,
        run_path: Path,
        host: str = "127.0.0.1",
        port: int = 8765,
        goal: str = "",
        serve: bool = True,
        poll_s: float = 0.2,
        show: Callable[[str], None] = print,
    ):
        self.run_path, self.host, self.port, self.goal = Path(run_path), host, port, goal
        self.serve, self.poll_s, self.show = serve, poll_s, show
        self.board = RoundBoard(self.run_path)
        self.server: PreferenceServer | None = None
        if serve:  # fail now, not after the first round has trained
            require("fastapi", extra="web", purpose="the preference page")
            require("uvicorn", extra="web", purpose="the preference page")
        self.name = "web"

    def __call__(self, round_id: str, options: Sequence[Option]) -> Choice:
        _need_two(round_id, options)
        answered = self.board.store.for_round(round_id)
        if answered is not None:
            return answered
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # ffmpeg runs in its own process
            published = tuple(pool.map(self._published, options))
        self.board.publish(PublishedRound(round_id, self.goal, published))
        if self.serve and self.server is None:
            self.server = PreferenceServer(self.run_path, self.host, self.port).start()
        where = self.server.url if self.server else f"the page of `rewardgen prefs serve {self.run_path}`"
        self.show(f"preference round {round_id}: pick the best and the worst policy at {where}")
        while (choice := self.board.store.for_round(round_id)) is None:
            time.sleep(self.poll_s)
        self.show(f"  {choice.rater or 'the judge'} chose {choice.best} (worst: {choice.worst})")
        return choice

    def _published(self, option: Option) -> dict[str, str]:
        from rewardgen.runs import convert_video

        entry = {"id": option.id}
        if option.video is not None and Path(option.video).is_file():
            video = Path(option.video)
            entry["video"] = _relative(self.run_path, video)
            try:  # WebM/VP9 plays in every browser; the MP4 stays as the fallback (Safari)
                entry["webm"] = _relative(self.run_path, convert_video(video, video.with_suffix(".webm")))
            except RewardgenError as exc:
                self.show(f"  {option.id}: no WebM copy ({exc}); the page offers the MP4")
        return entry

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _relative(run: Path, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(run.resolve()))
    except ValueError:
        raise RewardgenError(f"the video {path} is not inside the run {run}") from None
