"""What the preference page accepts: an answer (a strict schema, a bounded body, sent by the
page itself) and how it becomes a :class:`~rewardgen.feedback.store.Choice`. The server that
applies these is :mod:`rewardgen.feedback.server`."""

import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rewardgen.errors import RewardgenError
from rewardgen.feedback.options import clean_text
from rewardgen.feedback.store import Choice, DuplicateAnswerError, RoundBoard

__all__ = [
    "CSRF_HEADER",
    "MAX_BODY",
    "Answer",
    "Refused",
    "answer_headers",
    "cross_site",
    "parse_answer",
    "read_body",
    "same_secret",
    "to_choice",
]

MAX_BODY = 64 * 1024
MAX_WORDS = 4000
MAX_ID = 100
CSRF_HEADER = "x-rewardgen-csrf"


def same_secret(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any text (``compare_digest`` refuses non-ASCII str)."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


class Answer(BaseModel):
    """The page's answer, as JSON: strict types, nothing else accepted."""

    model_config = ConfigDict(extra="forbid", strict=True)

    round: str = Field(min_length=1, max_length=MAX_ID)
    best: str = Field(min_length=1, max_length=MAX_ID)
    worst: str = Field(min_length=1, max_length=MAX_ID)
    ranking: list[str] = Field(default_factory=list, max_length=MAX_ID)
    words: str = Field(default="", max_length=MAX_WORDS)
    rater: str = Field(default="", max_length=MAX_ID)


class Refused(RewardgenError):
    """A request refused with an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def parse_answer(body: bytes) -> Answer:
    """``body`` as an :class:`Answer`, or :class:`Refused` with the first problem in one line."""
    try:
        return Answer.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        kind, where = error["type"], ".".join(str(p) for p in error["loc"])
        if kind == "json_invalid":
            why = "nested too deeply" if "recursion" in error["msg"] else error["msg"].split(": ", 1)[-1]
            raise Refused(400, f"the answer is not valid JSON ({why})") from None
        if kind in ("model_type", "model_attributes_type"):
            raise Refused(400, "the answer must be a JSON object with round, best and worst") from None
        if kind == "missing":
            raise Refused(400, f"the answer needs '{where}' (a string)") from None
        if kind == "extra_forbidden":
            raise Refused(
                400, f"unknown field '{where}': an answer has round, best, worst, ranking, words, rater"
            ) from None
        raise Refused(400, f"'{where}': {error['msg'].splitlines()[0]}") from None


async def read_body(request: Any, limit: int = MAX_BODY) -> bytes:
    """The request's body, refused (413) on its declared length before reading any of it, and
    as soon as a chunked body passes ``limit``: a large body costs neither time nor memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Refused(400, f"Content-Length must be a number, got {declared[:40]!r}")
        if int(declared) > limit:
            raise Refused(413, f"an answer is at most {limit} bytes (this one declares {int(declared)})")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"an answer is at most {limit} bytes")
    return bytes(body)


def cross_site(request: Any, csrf: str) -> str | None:
    """Why a state-changing request does not come from the page itself, or None when it does."""
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin != own:
            return f"answers come only from the page itself, not from {clean_text(origin)[:80]}"
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"answers come only from the page itself (this request is {clean_text(site)[:20]})"
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind != "application/json":
        return "an answer is sent as application/json"
    given = request.headers.get(CSRF_HEADER) or ""
    if not same_secret(given, csrf):
        return "the page's secret is missing or wrong: reload the page the command printed"
    return None


def to_choice(board: RoundBoard, data: Answer) -> Choice:
    """The answer as a Choice for the pending round, or the reason it is refused."""
    pending = board.pending()
    if board.store.for_round(data.round) is not None:
        raise DuplicateAnswerError(f"round {data.round} already has an answer")
    if pending is None or pending.round != data.round:
        now = f"round {pending.round} is open" if pending else "no round is open"
        raise Refused(409, f"round {clean_text(data.round)} is not the open round ({now}): reload the page")
    shown = tuple(o["id"] for o in pending.options)
    ranking = data.ranking
    if ranking and sorted(ranking) != sorted(shown):
        raise Refused(422, f"a ranking lists every policy of the round once: {', '.join(shown)}")
    if ranking and (ranking[0] != data.best or ranking[-1] != data.worst):
        raise Refused(422, "a ranking starts with the best and ends with the worst")
    for picked in (data.best, data.worst):
        if picked in shown and not pending.filmed(picked):
            raise Refused(422, f"{picked} has no video in round {pending.round}: it cannot be judged")
    return Choice(
        round=pending.round,
        candidates=shown,
        best=data.best,
        worst=data.worst,
        ranking=tuple(ranking),
        words=clean_text(data.words, multiline=True),
        judge="web",
        rater=clean_text(data.rater),
    )


def answer_headers(page_html: str) -> dict[str, str]:
    """The headers a script needs to answer like the page does, from the page's HTML (its
    secret is in ``<meta name="rewardgen-csrf">``).

    Example:
        >>> answer_headers('<meta name="rewardgen-csrf" content="abc">')["X-Rewardgen-CSRF"]
        'abc'
    """
    marker = '<meta name="rewardgen-csrf" content="'
    start = page_html.index(marker) + len(marker)
    return {
        "Content-Type": "application/json",
        "X-Rewardgen-CSRF": page_html[start : page_html.index('"', start)],
    }
