"""``report.html``: what a person opens after a search. Every candidate's learning curves, videos
of the best policies, each round's prompt and every candidate's code with its fate.

The page is written from the run directory alone (``candidate.json`` files, ``metrics.csv``,
``manifest.json``), so it can be rebuilt at any time: after each round, after a kill, after
``rewardgen refine``, or by ``rewardgen report RUN_DIR``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.feedback import Choice, PreferenceStore
from rewardgen.feedback.store import RoundBoard
from rewardgen.runs import CandidateRecord, RunDir, read_metrics

__all__ = ["collect_candidates", "round_dirs", "write_report"]

_ROUND = re.compile(r"^(iter|refine)(\d+)$")


def round_dirs(run: Path) -> list[Path]:
    """The run's round folders in the order they ran: ``iter0, iter1, ..., refine1, refine2``."""
    found = [(m.group(1) != "iter", int(m.group(2)), p) for p in run.iterdir() if (m := _ROUND.match(p.name))]
    return [p for *_, p in sorted(found)]


def collect_candidates(run: Path) -> list[CandidateRecord]:
    """Every finished candidate of the run (its ``candidate.json``), round by round."""
    out = []
    for rnd in round_dirs(run):
        folders = sorted(rnd.glob("cand*"), key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else 0)
        out += [r for f in folders if (r := CandidateRecord.load(f)) is not None]  # None: still training
    return out


def _alarm(c: CandidateRecord) -> dict[str, Any] | None:
    """The reward-hacking alarm's verdict on a candidate's training run, when it fired."""
    from rewardgen.diagnostics.alarm import recorded_verdict

    verdict = recorded_verdict(_folder(c) / "train")
    return verdict.to_dict() if verdict is not None and verdict.hacked else None


def _folder(c: CandidateRecord) -> Path:
    assert c.path is not None  # records read from a run have their folder
    return c.path


def _plot_curves(
    cands: list[CandidateRecord], out_png: Path, metric_label: str, threshold: float | None = None
) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = []
    for c in cands:
        path = _folder(c) / "train" / RunDir.METRICS
        if path.is_file() and (m := read_metrics(path)):
            curves.append((c, m))
    if not curves:
        return False
    cmap = plt.get_cmap("tab20")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (c, m) in enumerate(curves):
        color = cmap(k % 20)
        style = "--" if c.pruned else "-"
        hacked = _alarm(c) is not None  # drawn thick, with crosses: the alarm fired on it
        look = {"linewidth": 3, "marker": "x"} if hacked else {}
        label = c.label + (" (reward hacking?)" if hacked else "")
        ax1.plot(
            m["timesteps"], m["success_metric_mean"], style, color=color, label=label, alpha=0.85, **look
        )
        ax2.plot(m["timesteps"], m["env_return_mean"], style, color=color, alpha=0.85, **look)
    if threshold is not None:
        ax1.axhline(threshold, color="grey", linestyle=":", label="success threshold")
    ax1.set_title(f"success metric ({metric_label})")
    ax2.set_title("env's own episode return")
    for ax in (ax1, ax2):
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return True


def _threshold(config: dict[str, Any]) -> float | None:
    from rewardgen.errors import RewardgenError
    from rewardgen.tasks import get_task

    try:
        metric = get_task(config["task"]).metric
    except (KeyError, RewardgenError):
        return None
    return metric.above if metric.above is not None else metric.below


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return format(value, spec)


def _rel(path: Path, run: Path) -> str:
    return html.escape(path.relative_to(run).as_posix(), quote=True)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.best { background: #e9f7e9; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.status-refused, .status-failed { color: #b00; }
.badge { display: inline-block; margin-left: .4em; padding: 0 .4em; border-radius: .6em; font-size: 80%;
         background: #b00; color: #fff; cursor: help; }
p.alarm { color: #b00; font-weight: bold; }
.videos { display: flex; flex-wrap: wrap; gap: 1em; }
.videos figure { margin: 0; }
video { width: 360px; }
"""


def _seconds(value: Any) -> str | None:
    from rewardgen.synthesis.clock import format_seconds

    return format_seconds(float(value)) if value is not None else None


def _time_table(manifest: dict[str, Any], cands: list[CandidateRecord]) -> list[str]:
    """Where the search's time went: each round's wait on the LLM, each candidate's smoke test,
    training, evaluations and video; the first success's time from the start."""
    from rewardgen.synthesis.clock import PHASES

    rounds = {r["round"]: r for r in manifest.get("rounds") or [] if "round" in r}
    if not rounds and not any(c.timing for c in cands):
        return []
    e = html.escape
    out = ["<h2>Where the time went</h2>"]
    spent = manifest.get("time")
    if spent:
        words = ", ".join(f"{k.removesuffix('_s')} {_seconds(v)}" for k, v in spent.items() if k != "wall_s")
        out.append(
            f"<p>{e(_seconds(spent.get('wall_s')) or '')} in all; summed over candidates: {e(words)} "
            "(candidates trained at once overlap).</p>"
        )
    hit = next((r for r in rounds.values() if r.get("first_success_s") is not None), None)
    if hit is not None:
        out.append(f"<p>First success {e(_seconds(hit['first_success_s']) or '')} after the start.</p>")
    heads = "".join(f"<th>{p.removesuffix('_s')}</th>" for p in PHASES)
    out.append(f"<table><tr><th>round</th><th>LLM</th><th>candidate</th>{heads}<th>ended</th></tr>")
    shown: set[str] = set()
    for c in cands:
        llm = rounds.get(c.round, {}).get("llm_s") if c.round not in shown else None
        shown.add(c.round)
        cells = "".join(f"<td>{e(_seconds(c.timing.get(p)) or '')}</td>" for p in PHASES)
        out.append(
            f"<tr><td>{e(c.round)}</td><td>{e(_seconds(llm) or '')}</td><td>{e(c.label)}</td>{cells}"
            f"<td>{e(c.stopped or c.status)}</td></tr>"
        )
    out.append("</table>")
    decided = [(name, d) for name, r in rounds.items() for d in r.get("decisions") or []]
    cut = [(name, r["cut"]) for name, r in rounds.items() if r.get("cut")]
    if decided or cut:  # the clock's choices: a round's share, training the best on or new rewards
        from rewardgen.synthesis.continuation import Outlook

        out.append("<h3>What the clock decided</h3><ul>")
        out += [
            f"<li>{e(name)}: {e(why)}; its candidates stopped, saved and evaluated</li>" for name, why in cut
        ]
        out += [f"<li>{e(name)}: {e(Outlook(**d).text())}</li>" for name, d in decided]
        out.append("</ul>")
    return out


def _best_of_all(run: Path, manifest: dict[str, Any], search_best: CandidateRecord | None) -> Path | None:
    """The best policy of the run: the search's pick, or a refinement's best where it scores
    higher on the success metric."""
    picks = [search_best] if search_best is not None else []
    for ref in manifest.get("refinements") or []:
        if ref.get("best") and (rec := CandidateRecord.load(run / ref["best"])) is not None:
            picks.append(rec)
    best: CandidateRecord | None = None
    for rec in picks:
        if best is None or (rec.score is not None and (best.score is None or rec.score > best.score)):
            best = rec
    return best.path.resolve() if best is not None and best.path is not None else None


def _usage_table(manifest: dict[str, Any]) -> list[str]:
    """The LLM's use: calls, answers from the cache, tokens and dollars, per round and in all."""
    total = manifest.get("llm_usage")
    if not total:
        return []
    e = html.escape
    out = [
        "<h2>LLM usage</h2><table><tr><th>round</th><th>calls</th><th>from cache</th><th>tokens</th>"
        "<th>$</th><th>waited</th></tr>"
    ]
    rounds = [r for r in manifest.get("rounds") or [] if r.get("llm")]

    def row(name: str, u: dict[str, Any], waited: Any = None) -> str:
        tokens = (u.get("prompt_tokens") or 0) + (u.get("completion_tokens") or 0)
        return (
            f"<tr><td>{e(name)}</td><td>{u.get('calls', 0)}</td><td>{u.get('cache_hits', 0)}</td>"
            f"<td>{tokens:,}</td><td>{u.get('cost_usd', 0.0):.4f}</td>"
            f"<td>{e(_seconds(waited) or '')}</td></tr>"
        )

    out += [row(r["round"], r["llm"], r.get("llm_s")) for r in rounds]
    out += [row(ref["round"], ref["llm"]) for ref in manifest.get("refinements") or [] if ref.get("llm")]
    out.append(row("all" + (" (refinements included)" if manifest.get("refinements") else ""), total))
    out.append("</table>")
    return out


def _room_table(answers: list[Choice], lineages: dict[str, list[str]]) -> list[str]:
    """Who preferred what in a round of a room of raters (and which candidates each lineage's
    prompt wrote, following each rater)."""
    if not answers:
        return []
    e = html.escape
    wrote = {cand: name for name, cands in lineages.items() for cand in cands}
    out = ["<table class='room'><tr><th>rater</th><th>preferred</th><th>least liked</th><th>said</th></tr>"]
    for a in answers:
        best = a.best + (f" (from {wrote[a.best]}'s prompt)" if a.best in wrote else "")
        out.append(
            f"<tr><td>{e(a.rater)}</td><td>{e(best)}</td><td>{e(a.worst or '')}</td>"
            f"<td>{e(a.words)}</td></tr>"
        )
    out.append("</table>")
    return out


def write_report(run: str | Path) -> Path:
    """Write ``report.html`` (and ``report_curves.png``) into the run directory; returns its path.

    Example:
        >>> import tempfile, json, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (run / "manifest.json").write_text(json.dumps({"task": "hopper-jump", "status": "running"}))
        >>> write_report(run).name
        'report.html'
    """
    run = Path(run)
    manifest = RunDir.open(run).manifest
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    cands = collect_candidates(run)
    best = summary.get("best") or manifest.get("best")
    record = CandidateRecord.from_dict(best) if best else None
    search_folder = record.path.resolve() if record is not None and record.path is not None else None
    best_folder = _best_of_all(run, manifest, record)
    config = manifest.get("config", {})
    metric = next((c.eval.metric for c in cands if c.eval is not None), "")
    has_plot = _plot_curves(cands, run / "report_curves.png", metric or "task metric", _threshold(config))

    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>rewardgen: {e(str(manifest.get('task')))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(str(manifest.get('task')))} &middot; {e(str(manifest.get('method', '')))}</h1>",
        "<table>",
    ]
    rows = {
        "goal": config.get("goal") or summary.get("goal") or manifest.get("goal"),
        "status": manifest.get("status"),
        "reason": manifest.get("reason") or manifest.get("error"),
        "ended": manifest.get("ended"),
        "time budget": _seconds(config.get("time_budget_s")),
        "success metric": metric,
        "candidates": f"{config.get('samples', '?')} per round, {config.get('steps', '?')} steps each",
        "LLM": (manifest.get("llm") or {}).get("model"),
        "started": manifest.get("started_at"),
        "finished": manifest.get("finished_at"),
    }
    for key, value in rows.items():
        if value:
            parts.append(f"<tr><th>{e(key)}</th><td>{e(str(value))}</td></tr>")
    parts.append("</table>")

    if has_plot:
        parts.append("<h2>Learning curves</h2><p>Every trained candidate (dashed: stopped early).</p>")
        parts.append("<img src='report_curves.png' alt='learning curves of every candidate'>")

    videos = [(c, _folder(c) / "train" / RunDir.VIDEO) for c in cands]
    videos = [(c, v) for c, v in videos if v.is_file()]
    finals = sorted((run / "final").glob("seed*/video.mp4")) if (run / "final").is_dir() else []
    if videos or finals:
        parts.append("<h2>Videos of the best policies</h2><div class='videos'>")
        for c, v in videos:
            caption = f"{c.label}: success metric {_fmt(c.success_metric)}"
            parts.append(
                f"<figure><video src='{_rel(v, run)}' controls loop muted></video>"
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        for v in finals:
            parts.append(
                f"<figure><video src='{_rel(v, run)}' controls loop muted></video>"
                f"<figcaption>best reward, {e(v.parent.name)}</figcaption></figure>"
            )
        parts.append("</div>")

    if summary.get("final_seeds"):
        parts.append("<h2>The best reward retrained with more seeds</h2>")
        if summary.get("seeds"):
            won = summary["seeds"]
            parts.append(
                f"<p>It succeeds on {won['succeeded']} of its {won['of']} seeds (the search's included).</p>"
            )
        parts.append("<table><tr><th>seed</th><th>success metric</th><th>success rate</th><th>succeeded</th>")
        parts.append("<th>env return</th></tr>")
        for f in summary["final_seeds"]:
            parts.append(
                f"<tr><td>{f.get('seed')}</td><td>{_fmt(f.get('success_metric_mean'))}</td>"
                f"<td>{_fmt(f.get('success_rate'), '.0%')}</td>"
                f"<td>{'yes' if f.get('succeeded') else 'no'}</td>"
                f"<td>{_fmt(f.get('env_return_mean'), '.1f')}</td>"
                f"{'<td>' + e(f['error']) + '</td>' if f.get('error') else ''}</tr>"
            )
        parts.append("</table>")

    def search_pick(c: CandidateRecord) -> str:
        """The search's own pick, where a refinement has since done better."""
        picked = search_folder is not None and _folder(c).resolve() == search_folder
        return " (the search's pick)" if picked and search_folder != best_folder else ""

    parts.append("<h2>Candidates</h2><p>&#9733; the best of all, refinements included.</p><table>")
    parts.append(
        "<tr><th>candidate</th><th>status</th><th>steps</th><th>score</th><th>success metric</th>"
        "<th>success rate</th><th>env return</th><th>reason</th></tr>"
    )
    for c in cands:
        ev = c.eval
        is_best = best_folder is not None and _folder(c).resolve() == best_folder
        status = c.status + (" (stopped early)" if c.pruned else "")
        status += f" (stopped: {c.stopped})" if c.stopped and c.status == "trained" else ""
        alarm = _alarm(c)
        badge = (
            f"<span class='badge' title='{e('; '.join(alarm['reasons']))}'>reward hacking?</span>"
            if alarm
            else ""
        )
        parts.append(
            f"<tr class='{'best' if is_best else ''}'><td><a href='#{e(c.label)}'>{e(c.label)}</a>"
            f"{' &#9733;' if is_best else ''}{search_pick(c)}{badge}</td>"
            f"<td class='status-{e(c.status)}'>{e(status)}</td>"
            f"<td>{_fmt(c.steps, ',')}</td><td>{_fmt(c.score)}</td>"
            f"<td>{_fmt(ev and ev.success_metric_mean)}</td><td>{_fmt(ev and ev.success_rate, '.0%')}</td>"
            f"<td>{_fmt(ev and ev.env_return_mean, '.1f')}</td>"
            f"<td>{e(c.reason or ('; '.join(alarm['reasons']) if alarm else ''))}</td></tr>"
        )
    parts.append("</table>")

    parts += _time_table(manifest, cands)
    parts += _usage_table(manifest)

    answers = {c.round: c for c in PreferenceStore(run / "preferences.jsonl").load()}
    room = PreferenceStore(run / RoundBoard.ROOM, per_rater=True)  # each rater's answers
    lineages = {r["round"]: r["lineages"] for r in manifest.get("rounds") or [] if r.get("lineages")}
    if rewards := (summary.get("raters") or manifest.get("raters")):
        parts.append("<h2>Each rater's reward</h2><table><tr><th>rater</th><th>reward</th><th>candidate</th>")
        parts.append("<th>success metric</th></tr>")
        for rater, cand in rewards.items():
            parts.append(
                f"<tr><td>{e(rater)}</td><td><a href='{e(cand['file'])}'>{e(cand['file'])}</a></td>"
                f"<td><a href='#{e(CandidateRecord.from_dict(cand).label)}'>"
                f"{e(CandidateRecord.from_dict(cand).label)}</a></td>"
                f"<td>{_fmt((cand.get('eval') or {}).get('success_metric_mean'))}</td></tr>"
            )
        parts.append("</table>")
    for rnd in round_dirs(run):
        parts.append(f"<h2>{e(rnd.name)}</h2>")
        if rnd.name in answers:  # ICPL: what the judge chose in this round
            a = answers[rnd.name]
            who = a.judge + (f" ({a.rater})" if a.rater else "")
            parts.append(
                f"<p class='choice'>Preferred <b>{e(a.best)}</b>"
                + (f", rejected <b>{e(a.worst)}</b>" if a.worst else "")
                + f" of {e(', '.join(a.candidates))}; judge {e(who)}, {e(a.time)}</p>"
            )
            if a.words and not room.answers(rnd.name):
                parts.append(f"<blockquote>{e(a.words)}</blockquote>")
        parts += _room_table(room.answers(rnd.name), lineages.get(rnd.name, {}))
        prompts = [("feedback.txt", "The person's feedback"), ("prompt.md", "The prompt")]
        prompts += [
            (f.name, f"The prompt of {f.stem.removeprefix('prompt-')}'s lineage")
            for f in sorted(rnd.glob("prompt-*.md"))
        ]
        for name, title in prompts:
            if (rnd / name).is_file():
                parts.append(
                    f"<details><summary>{e(title)}</summary>"
                    f"<pre>{e((rnd / name).read_text())}</pre></details>"
                )
        for c in (c for c in cands if c.round == rnd.name):
            is_best = best_folder is not None and _folder(c).resolve() == best_folder
            parts.append(
                f"<details id='{e(c.label)}'{' open' if is_best else ''}><summary>{e(c.label)}: "
                f"{e(c.status)}</summary>"
            )
            if (alarm := _alarm(c)) is not None:
                parts.append(
                    f"<p class='alarm'>Reward hacking suspected: {e('; '.join(alarm['reasons']))}</p>"
                )
            if (_folder(c) / "train" / RunDir.CURVE).is_file():
                parts.append(f"<img src='{_rel(_folder(c) / 'train' / RunDir.CURVE, run)}' width=480>")
            reply = _folder(c) / "reply.md"
            text = c.code or (reply.read_text() if reply.is_file() else "(no reply saved)")
            parts.append(f"<pre>{e(text)}</pre></details>")
    parts.append("</body></html>")
    out = run / "report.html"
    tmp = run / "report.html.tmp"
    tmp.write_text("\n".join(parts))
    tmp.replace(out)
    return out
