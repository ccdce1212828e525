"""The preference page's server (``--judge web``, ``rewardgen prefs serve RUN_DIR``).

The server reads and writes only the run: the published rounds (:class:`RoundBoard`) and the
answers (``preferences.jsonl``). So the page the search starts and one served by hand show the
same round, an answer survives a kill of either, and a resumed search puts the same videos back.

What it defends against, and how:

- Other machines: it binds 127.0.0.1 and answers only loopback clients whose ``Host`` is loopback
  (no DNS rebinding). On any other host every request needs the random token of the printed URL;
  the page trades it for an HttpOnly, SameSite=Strict cookie (named by port) and drops it from the
  address bar and history.
- Other web pages in the same browser (CSRF): an answer must come from the page itself. It is
  refused when its ``Origin`` is not the page's own, when ``Sec-Fetch-Site`` is not
  ``same-origin``, when it is not ``application/json``, or when it lacks the run's secret that
  the served page sends in ``X-Rewardgen-CSRF`` (a page of another origin, another port
  included, cannot read it).
- Requests built to hurt: a body is refused on its declared length at once and read no further
  than 64 KB when chunked; the answer is parsed by a schema (strict types, bounded nesting and
  lengths); every refusal is a 4xx with a one-line reason and changes nothing on disk.
- Files: videos are found by round and policy id in the board, never by a path from the request,
  and a stored path that leaves the run (``..``, absolute, a symlink out of it) is refused.
- A policy without a video is not shown and cannot be picked.
- A room of raters (``--judge web:raters=ana+bob``): each rater has their own link, holding their
  own random token (kept in the run, readable by its owner only); the page trades it for a
  cookie, and an answer is saved under the name of the link that sent it, once per rater and
  round. A page opened without a rater link (or another rater's body naming someone else) cannot
  answer for anyone: the name never comes from the request's body.
"""

import errno
import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rewardgen.errors import RewardgenError
from rewardgen.feedback.answers import (  # noqa: F401  (answer_headers: for scripts)
    Refused,
    answer_headers,
    cross_site,
    parse_answer,
    read_body,
    same_secret,
    to_choice,
)
from rewardgen.feedback.options import clean_text
from rewardgen.feedback.store import DuplicateAnswerError, PublishedRound, RoundBoard

__all__ = ["PreferenceServer", "make_app"]

PAGE = Path(__file__).with_name("page.html")
RATER_HEADER = "x-rewardgen-rater"
VIDEO_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
ENDED = ("finished", "stopped", "failed", "interrupted")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host a ``Host`` header names, as a URL parser reads it (``127.0.0.1:8765@evil.example``
    names ``evil.example``); empty when it is not a plain ``host[:port]``.

    Example:
        >>> host_of("127.0.0.1:8765"), host_of("[::1]:80"), host_of("127.0.0.1:8765@evil.example")
        ('127.0.0.1', '::1', '')
    """
    try:
        parts = urlsplit("//" + header.strip())
        parts.port  # noqa: B018  (a bad port raises)
    except ValueError:
        return ""
    if (
        parts.username is not None
        or parts.password is not None
        or parts.path
        or parts.query
        or parts.fragment
    ):
        return ""
    return parts.hostname or ""


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


class PageWatch:
    """When the open page last asked for the state, and whether it has been told the run ended:
    the server keeps answering for a moment after the search ends so that the page can say so."""

    def __init__(self) -> None:
        self.last_poll: float | None = None
        self.told_end = False

    def saw(self, ended: bool) -> None:
        self.last_poll = time.monotonic()
        self.told_end = self.told_end or ended

    def wait_until_told(self, linger_s: float, poll_gap_s: float = 10.0) -> None:
        deadline = time.monotonic() + linger_s
        while (
            not self.told_end
            and self.last_poll is not None
            and time.monotonic() - self.last_poll < poll_gap_s
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)


def make_app(run_path: Path, token: str | None = None, watch: PageWatch | None = None) -> Any:
    """The page's FastAPI app over the run at ``run_path``; ``token`` (when the server is not
    loopback-only) is required on every request."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
    except ImportError:
        raise RewardgenError(
            "the preference page needs the web extra: pip install 'rewardgen[web]' (FastAPI and uvicorn)"
        ) from None

    run = Path(run_path)
    board = RoundBoard(run)
    csrf = board.page_settings()["csrf"]
    watch = watch or PageWatch()
    app = FastAPI(title="rewardgen preferences", docs_url=None, redoc_url=None, openapi_url=None)

    def refuse(status: int, reason: str) -> JSONResponse:
        return JSONResponse({"detail": reason}, status_code=status)

    def cookie_name(request: Request, kind: str = "token") -> str:  # cookies ignore ports
        server = request.scope.get("server") or ("", 0)
        return f"rewardgen_{kind}_{server[1]}"

    def rater_of(request: Request) -> str | None:
        """The rater whose link opened this page (their token: in the URL, a header or the
        cookie the link set), or None."""
        given = (
            request.query_params.get("rater")
            or request.headers.get(RATER_HEADER)
            or request.cookies.get(cookie_name(request, "rater"))
        )
        if not given:
            return None
        return next((name for name, secret in board.room().items() if same_secret(given, secret)), None)

    def to_cookie(request: Request, kind: str, value: str) -> Any:
        """The secret in the URL moves to a cookie; the address bar and the history keep a clean URL."""
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(cookie_name(request, kind), value, httponly=True, samesite="strict")
        return _secure(response)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        rater = rater_of(request)
        link = request.query_params.get("rater")
        if link is not None and rater is None:
            return refuse(401, "this rater link is not one of this run's: ask for your link again")
        if token is None:  # loopback only: the client and the name it asked for
            client = request.client.host if request.client else ""
            host = host_of(request.headers.get("host") or "")
            if not is_loopback(client) or not is_loopback(host):
                return refuse(
                    403, "this page answers only on this machine (start it with --host to share it)"
                )
        else:
            in_url = request.query_params.get("token")
            given = (
                in_url
                or request.headers.get("x-rewardgen-token")
                or request.cookies.get(cookie_name(request))
            )
            if rater is None and (not given or not same_secret(given, token)):
                return refuse(401, "missing or wrong token: open the URL the command printed")
            if in_url and rater is None and request.method == "GET" and request.url.path == "/":
                return to_cookie(request, "token", token)
        if link is not None and request.method == "GET" and request.url.path == "/":
            return to_cookie(request, "rater", link)  # a rater's link: their name goes with each answer
        request.state.rater = rater
        if request.method not in ("GET", "HEAD"):
            reason = cross_site(request, csrf)
            if reason is not None:
                status = 415 if reason.endswith("application/json") else 403
                return refuse(status, reason)
        return _secure(await call_next(request))

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text().replace("{{csrf}}", csrf))

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/api/state")
    def state(request: Request) -> dict[str, Any]:
        current = page_state(run, board, you=request.state.rater)
        watch.saw(current["ended"] is not None)
        return current

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
        try:
            data = parse_answer(await read_body(request))
            if board.room():  # a room: each rater answers from their own link, for themselves
                rater = request.state.rater
                if rater is None:
                    raise Refused(401, "this round is for a room of raters: answer from your own rater link")
                if data.rater and data.rater != rater:
                    other = clean_text(data.rater)[:40]
                    raise Refused(403, f"this page answers for {rater}, not for {other}")
                choice = replace(to_choice(board, data), rater=rater)
                board.room_store.add(choice)
            else:
                choice = to_choice(board, data)
                board.store.add(choice)
        except DuplicateAnswerError as exc:
            return refuse(409, str(exc))
        except Refused as exc:
            return refuse(exc.status, str(exc))
        except RewardgenError as exc:  # Choice's own checks
            return refuse(422, str(exc))
        return {"saved": True, "round": choice.round, "best": choice.best, "worst": choice.worst}

    return app


def _secure(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays on this page
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; media-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


def page_state(run: Path, board: RoundBoard, you: str | None = None) -> dict[str, Any]:
    """What the page shows: the open round, the earlier rounds' winners, the run's status, and
    once the run has ended its best policy and where its report is; for a room of raters, who
    is asked, who has answered the open round, when it closes, and who ``you`` are."""
    from rewardgen.runs import RunDir

    manifest = RunDir.read_manifest(run)
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
            "left_out": [dict(o) for o in pending.left_out],
        }
        if pending.raters:
            answered = [c.rater for c in board.room_store.answers(pending.round)]
            open_round["room"] = {
                "raters": list(pending.raters),
                "answered": answered,
                "quorum": pending.quorum,
                "closes": pending.closes,
                "you_answered": you in answered,
            }
    status = manifest.get("status")
    ended = None
    if status in ENDED:
        best = manifest.get("best") or {}
        where = Path(best["path"]) if best.get("path") else None
        shown = board.get(where.parent.name) if where is not None else None
        option = shown.option(where.name) if shown is not None and where is not None else None
        report = run / "report.html"
        ended = {
            "status": status,
            "reason": manifest.get("reason"),
            "best": (urls(shown, option) if shown and option else {"id": where.name}) if where else None,
            "best_round": where.parent.name if where else None,
            "report": str(report.resolve()) if report.is_file() else None,
        }
    last_goal = rounds[-1].goal if rounds else ""
    return {
        "run": run.name,
        "task": config.get("task") or manifest.get("task"),
        "goal": (pending.goal if pending else None) or last_goal or config.get("goal") or "",
        "rounds_total": config.get("iterations") if _judged_rounds(config.get("method")) else None,
        "status": status,
        "ended": ended,
        "round": open_round,
        "history": history,
        "you": you,
    }


def _judged_rounds(method: Any) -> bool:
    """Whether a run of ``method`` has a number of rounds a person judges (ICPL's iterations)."""
    from rewardgen.methods import METHODS

    info = METHODS.get(str(method))
    return info is not None and info.judged and info.family == "search"


def interface_addresses(ipv6: bool = False) -> list[str]:
    """This machine's addresses other machines may reach (not loopback), for the URLs printed
    when the page is served on every interface."""
    found: list[str] = []
    try:
        import psutil

        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        for addrs in psutil.net_if_addrs().values():
            found += [a.address.split("%")[0] for a in addrs if a.family == family]
    except ImportError:
        try:
            infos = socket.getaddrinfo(
                socket.gethostname(), None, socket.AF_INET6 if ipv6 else socket.AF_INET
            )
            found = [str(info[4][0]) for info in infos]
        except OSError:
            found = []
    kept = []
    for address in found:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local) and address not in kept:
            kept.append(address)
    return kept


class PreferenceServer:
    """Serves the preference page of a run: in a background thread (:meth:`start`, as ICPL's web
    judge does) or in the foreground (:meth:`serve`, ``rewardgen prefs serve``). A host other than
    loopback gets a random token, which :attr:`url` carries. ``prefer`` is a port to try first
    (the one the run's page had before a resume).

    Example:
        >>> import tempfile
        >>> server = PreferenceServer(Path(tempfile.mkdtemp()), port=0).start()
        >>> server.url.startswith("http://127.0.0.1:")
        True
        >>> server.stop()
    """

    def __init__(
        self,
        run_path: Path,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        prefer: int | None = None,
    ):
        self.run_path, self.host = Path(run_path), host
        self.token = token or (None if is_loopback(host) else secrets.token_urlsafe(16))
        self.watch = PageWatch()
        self.app = make_app(self.run_path, self.token, self.watch)
        self.sock = _bind(host, port, prefer)
        self.port = self.sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def urls(self) -> list[str]:
        """Where the page is: on every interface, one URL per address other machines may use."""
        if self.host in ("0.0.0.0", "::"):
            hosts = interface_addresses(ipv6=self.host == "::") or [socket.gethostname()]
        else:
            hosts = ["127.0.0.1" if self.host in ("127.0.0.1", "localhost") else self.host]
        query = f"?token={self.token}" if self.token else ""
        return [f"http://{f'[{h}]' if ':' in h else h}:{self.port}/{query}" for h in hosts]

    @property
    def url(self) -> str:
        return self.urls[0]

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

    def stop(self, linger_s: float = 0.0) -> None:
        """Stop serving; with ``linger_s``, first give a page that is open (it asked within the
        last seconds) up to that long to learn that the run has ended."""
        if linger_s > 0:
            self.watch.wait_until_told(linger_s)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()


def _bind(host: str, port: int, prefer: int | None = None) -> socket.socket:
    """A listening socket on ``host``: ``prefer`` if free, else ``port``, else the next free one
    of the ten after it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    tries = [port] if port == 0 else list(range(port, port + 10))
    for p in ([prefer] if prefer else []) + tries:
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
