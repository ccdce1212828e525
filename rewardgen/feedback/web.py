"""The web judge: a person compares a round's policies in a browser (``--judge web``). The page
and its server are in :mod:`rewardgen.feedback.server` (``rewardgen prefs serve RUN_DIR`` serves
the same page by hand)."""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from rewardgen.errors import RewardgenError, require
from rewardgen.feedback.options import Option, clean_text, need_two, watchable
from rewardgen.feedback.server import PreferenceServer, make_app
from rewardgen.feedback.store import Choice, PublishedRound, RoundBoard, room_choice

__all__ = ["PreferenceServer", "WebJudge", "make_app"]


class WebJudge:
    """A person in a browser: each round's videos are published to the run's preference page and
    the judge waits for the answer the page writes to ``preferences.jsonl``. The page's server
    starts with the first round (``serve=False`` when ``rewardgen prefs serve`` serves the run),
    on the port the run's page had before a resume when it is free. A policy without a video is
    left out of the round, with its reason on the page.

    A room of ``raters`` (names): each gets their own link (printed at the first round); a round
    closes when ``quorum`` of them have answered (default: all), or ``wait_s`` seconds after it
    opened once anyone has; the room's answer (:func:`~rewardgen.feedback.store.room_choice`) is
    the round's, and each rater's stays in ``room_answers.jsonl``.

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
        raters: Sequence[str] = (),
        quorum: int | None = None,
        wait_s: float | None = None,
    ):
        self.run_path, self.host, self.port, self.goal = Path(run_path), host, port, goal
        self.serve, self.poll_s, self.show = serve, poll_s, show
        self.board = RoundBoard(self.run_path)
        self.raters = tuple(clean_text(r) for r in raters)
        if len(set(self.raters)) != len(self.raters) or not all(self.raters):
            raise RewardgenError(f"a room's raters need different, non-empty names, got {list(raters)}")
        self.quorum = len(self.raters) if quorum is None else int(quorum)
        if self.raters and not 1 <= self.quorum <= len(self.raters):
            raise RewardgenError(f"quorum must be from 1 to {len(self.raters)} (the raters), got {quorum}")
        if wait_s is not None and wait_s <= 0:
            raise RewardgenError(f"wait must be a number of seconds > 0, got {wait_s}")
        self.wait_s = wait_s
        self.links_shown = False
        self.server: PreferenceServer | None = None
        if serve:  # fail now, not after the first round has trained
            require("fastapi", extra="web", purpose="the preference page")
            require("uvicorn", extra="web", purpose="the preference page")
        self.name = "web"

    def __call__(self, round_id: str, options: Sequence[Option]) -> Choice:
        need_two(round_id, options)
        answered = self.board.store.for_round(round_id)
        if answered is not None:
            return answered
        shown = watchable(round_id, options, self.show)
        left_out = tuple(
            {"id": o.id, "note": o.note or "it was not filmed"} for o in options if o not in shown
        )
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # ffmpeg runs in its own process
            published = tuple(pool.map(self._published, shown))
        room = self.board.seat(list(self.raters)) if self.raters else {}
        opened = time.time()
        closes = ""
        if room and self.wait_s is not None:
            closes = _dt.datetime.fromtimestamp(opened + self.wait_s, _dt.timezone.utc).isoformat(
                timespec="seconds"
            )
        self.board.publish(
            PublishedRound(
                round_id,
                self.goal,
                published,
                left_out=left_out,
                raters=self.raters,
                quorum=self.quorum if room else 0,
                closes=closes,
            )
        )
        if self.serve and self.server is None:
            recorded = self.board.page_settings().get("port")
            self.server = PreferenceServer(self.run_path, self.host, self.port, prefer=recorded).start()
            self.board.record_port(self.server.port)
        where = (
            " or ".join(self.server.urls)
            if self.server
            else f"the page of `rewardgen prefs serve {self.run_path}`"
        )
        if not room:
            self.show(f"preference round {round_id}: pick the best and the worst policy at {where}")
            while (choice := self.board.store.for_round(round_id)) is None:
                time.sleep(self.poll_s)
            self.show(
                f"  {clean_text(choice.rater) or 'the judge'} chose {choice.best} (worst: {choice.worst})"
            )
            return choice
        self.show(f"preference round {round_id}: {len(room)} raters, each from their own link ({where})")
        if not self.links_shown:
            for name, link in self.links(room).items():
                self.show(f"  {name}: {link}")
            self.links_shown = True
        return self._room_answer(round_id, opened)

    def answers(self, round_id: str) -> list[Choice]:
        """Each rater's answer to ``round_id`` (a room's; [] for one person)."""
        return self.board.room_store.answers(round_id) if self.raters else []

    def links(self, room: dict[str, str]) -> dict[str, str]:
        """Each rater's link: the page's address with their token (which the page moves to a cookie)."""
        base = self.server.url if self.server else f"http://{self.host}:{self.port}/"
        return {name: _with_query(base, "rater", token) for name, token in room.items()}

    def _room_answer(self, round_id: str, opened: float) -> Choice:
        """Wait for the quorum (or the wait, once anyone answered); the room's answer, kept."""
        said: set[str] = set()
        while True:
            if (decided := self.board.store.for_round(round_id)) is not None:  # a resumed search
                return decided
            answers = self.board.room_store.answers(round_id)
            for c in answers:
                if c.rater not in said:
                    said.add(c.rater)
                    self.show(
                        f"  {c.rater} chose {c.best} (worst: {c.worst}); {len(said)} of {self.quorum} needed"
                    )
            late = self.wait_s is not None and time.time() > opened + self.wait_s
            if len(said) >= self.quorum or (answers and late):
                choice = room_choice(answers)
                self.board.store.add(choice)
                self.show(f"  the room ({choice.rater}) chose {choice.best} (worst: {choice.worst})")
                return choice
            time.sleep(self.poll_s)

    def _published(self, option: Option) -> dict[str, str]:
        from rewardgen.runs import convert_video

        assert option.video is not None  # watchable() kept only filmed policies
        video = Path(option.video)
        entry = {"id": option.id, "video": _relative(self.run_path, video)}
        try:  # WebM/VP9 plays in every browser; the MP4 stays as the fallback (Safari)
            entry["webm"] = _relative(self.run_path, convert_video(video, video.with_suffix(".webm")))
        except RewardgenError as exc:
            self.show(f"  {option.id}: no WebM copy ({exc}); the page offers the MP4")
        return entry

    def close(self) -> None:
        """Stop the page's server, after giving an open page a moment to learn the run ended."""
        if self.server is not None:
            self.server.stop(linger_s=5.0)
            self.server = None


def _relative(run: Path, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(run.resolve()))
    except ValueError:
        raise RewardgenError(f"the video {path} is not inside the run {run}") from None


def _with_query(url: str, key: str, value: str) -> str:
    """``url`` with ``key=value`` added to its query (a URL with a page token keeps it)."""
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode({key: value})]))
    return urlunsplit(parts._replace(query=query))
