"""What a person looks at: metrics.csv rows, the learning-curve plot and the policy video."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import RewardgenError

__all__ = [
    "MetricsWriter",
    "annotate_frames",
    "convert_video",
    "episode_means",
    "metrics_row",
    "plot_learning_curve",
    "read_metrics",
    "write_video",
]

BASE_COLUMNS = [
    "timesteps",
    "wall_time_s",
    "episodes",
    "env_return_mean",
    "reward_return_mean",
    "ep_length_mean",
    "success_metric_mean",
    "success_rate",
]


def episode_means(episodes: Sequence[dict[str, Any]], metric: Any) -> dict[str, float]:
    """Means over episode summaries (the wrappers' ``reward_episode`` rows) and the share that met
    the task's success ``metric``: what metrics.csv, evals.csv and eval.json report.

    Example:
        >>> class Above1:
        ...     def success(self, v): return v > 1
        >>> ep = {"env_return": 2.0, "reward_return": 1.0, "length": 10, "metrics": {"success_metric": 3.0}}
        >>> episode_means([ep], Above1())["success_rate"]
        1.0
    """
    values = [e["metrics"]["success_metric"] for e in episodes]
    return {
        "env_return_mean": float(np.mean([e["env_return"] for e in episodes])),
        "reward_return_mean": float(np.mean([e["reward_return"] for e in episodes])),
        "ep_length_mean": float(np.mean([e["length"] for e in episodes])),
        "success_metric_mean": float(np.mean(values)),
        "success_rate": float(np.mean([bool(metric.success(v)) for v in values])),
    }


def metrics_row(
    episodes: Sequence[dict[str, Any]], metric: Any, timesteps: int, wall_time_s: float, total_episodes: int
) -> dict[str, Any]:
    """One metrics.csv row from the episode summaries since the last row: means, success rate and
    each reward component's mean episode sum (``component/<name>``)."""
    row = {
        "timesteps": timesteps,
        "wall_time_s": round(wall_time_s, 2),
        "episodes": total_episodes,
        **episode_means(episodes, metric),
    }
    for name in episodes[-1]["components"]:
        row[f"component/{name}"] = float(np.mean([e["components"].get(name, 0.0) for e in episodes]))
    for name in episodes[-1]["metrics"]:  # the env reward's terms (env_term/<field>), where known
        if name != "success_metric":
            row[name] = float(np.mean([e["metrics"].get(name, 0.0) for e in episodes]))
    return row


class MetricsWriter:
    """Appends one row per logging interval to ``metrics.csv`` and flushes it (nothing lost on a
    crash), and as TensorBoard scalars in the same folder (:class:`~rewardgen.runs.tensorboard.ScalarLog`).
    Component columns are ``component/<name>`` episode sums, fixed at the first row.
    With ``append`` (training that continues a run) rows go under the file's existing header."""

    def __init__(self, path: Path, append: bool = False, tensorboard: bool | None = None):
        from rewardgen.runs.tensorboard import ScalarLog

        self.path = path
        self.scalars = ScalarLog(path.parent, tensorboard)  # the same rows as TensorBoard scalars
        self.columns: list[str] | None = None
        if append and path.is_file():
            with path.open(newline="") as f:
                self.columns = next(csv.reader(f), None)

    def write(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            comps = sorted(k for k in row if k.startswith(("component/", "env_term/")))
            self.columns = BASE_COLUMNS + comps
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in self.columns])
        self.scalars.row(row)

    def close(self) -> None:
        self.scalars.close()


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in rows[0]}


def plot_learning_curve(
    metrics_csv: Path,
    out_png: Path,
    title: str,
    threshold: float | None = None,
    metric_label: str = "success metric",
    reward_label: str = "synthesized return",
    alarm: str | None = None,
) -> bool:
    """Env return and synthesized return (top) and the success metric (bottom) vs timesteps.
    ``alarm`` (the reward-hacking alarm's words): the synthesized return and the success metric
    are drawn thick and red, the words above them.

    Returns False when there is nothing to plot yet (no finished episode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not metrics_csv.exists():
        return False
    m = read_metrics(metrics_csv)
    if not m:
        return False
    t = m["timesteps"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    hot = {"color": "tab:red", "linewidth": 2.5} if alarm else {}
    ax1.plot(t, m["reward_return_mean"], label=reward_label, marker=".", **{"color": "tab:orange", **hot})
    ax1.plot(t, m["env_return_mean"], label="env's own return", linestyle="--", marker=".", color="tab:blue")
    ax1.set_ylabel("episode return")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax1.set_title(title)
    if alarm:
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(alarm, 90)), color="tab:red", fontsize=8)
    ax2.plot(
        t, m["success_metric_mean"], marker=".", label="training episodes", **{"color": "tab:green", **hot}
    )
    evals = metrics_csv.parent / "evals.csv"  # periodic deterministic evaluations, when there are any
    e = read_metrics(evals) if evals.is_file() else {}
    if e:
        ax2.plot(e["timesteps"], e["success_metric_mean"], "D", color="tab:purple", label="evaluations")
    if threshold is not None:
        ax2.axhline(threshold, color="grey", linestyle="--", label="success threshold")
    if threshold is not None or e:
        ax2.legend()
    ax2.set_ylabel(metric_label)
    ax2.set_xlabel("environment steps")
    ax2.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.95) if alarm else None)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return True


def annotate_frames(
    frames: Sequence[np.ndarray], scores: Sequence[float | None], label: str = "reward", min_width: int = 448
) -> list[np.ndarray]:
    """Frames with a strip below each: ``label`` and that frame's score, and the whole episode's
    scores as a curve with a cursor at the frame (None: no score for that frame, e.g. the first,
    which no step led to). Small frames are enlarged by a whole factor to at least ``min_width``.

    Example:
        >>> frames = [np.zeros((64, 64, 3), np.uint8)] * 3
        >>> out = annotate_frames(frames, [None, 0.2, 0.3], "VLM reward")
        >>> out[0].shape
        (520, 448, 3)
    """
    from PIL import Image, ImageDraw, ImageFont

    if len(frames) != len(scores):
        raise RewardgenError(f"{len(frames)} frames but {len(scores)} scores")
    w = np.asarray(frames[0]).shape[1]
    k = max(1, -(-min_width // w))  # ceil
    width, strip = w * k, 72
    known = [s for s in scores if s is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
    span = (hi - lo) or 1.0
    xs = np.linspace(8, width - 8, len(scores))
    ys = [None if s is None else strip - 8 - (s - lo) / span * (strip - 36) for s in scores]
    font = ImageFont.load_default(size=16) if hasattr(ImageFont, "load_default") else None
    out = []
    for i, frame in enumerate(frames):
        big = np.asarray(frame, dtype=np.uint8).repeat(k, axis=0).repeat(k, axis=1)
        panel = Image.new("RGB", (width, strip), (24, 24, 28))
        draw = ImageDraw.Draw(panel)
        value = "-" if scores[i] is None else f"{scores[i]:+.4f}"
        draw.text((8, 4), f"{label} {value}   step {i}", fill=(240, 240, 240), font=font)
        points = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if y is not None]
        if len(points) > 1:
            draw.line(points, fill=(90, 90, 110), width=1)  # the whole episode
            past = [p for p in points if p[0] <= xs[i]]
            if len(past) > 1:
                draw.line(past, fill=(255, 170, 40), width=2)  # up to this frame
        draw.line([(xs[i], 28), (xs[i], strip - 4)], fill=(240, 240, 240), width=1)
        out.append(np.concatenate([big, np.asarray(panel)], axis=0))
    return out


def write_video(frames: Sequence[np.ndarray], path: Path, fps: int) -> None:
    """Write RGB frames to an MP4 (H.264 through imageio's bundled ffmpeg)."""
    import imageio.v2 as imageio

    if not frames:
        raise RewardgenError(f"no frames to write to {path}")
    with imageio.get_writer(
        path,
        fps=fps,
        codec="libx264",
        quality=6,
        macro_block_size=8,
        ffmpeg_params=["-preset", "veryfast", "-movflags", "+faststart"],  # browsers play while loading
    ) as w:
        for frame in frames:
            w.append_data(np.asarray(frame, dtype=np.uint8))


def convert_video(src: Path, dst: Path, width: int | None = None, fps: float | None = None) -> Path:
    """A copy of the video ``src`` in the format of ``dst``'s suffix, through imageio's bundled
    ffmpeg: ``.webm`` (VP9, which Chromium and Firefox play without proprietary codecs) or ``.gif``
    (a preview for a terminal session; ``width`` and ``fps`` shrink it). Written whole or not at
    all; an up-to-date ``dst`` is kept.

    Example:
        >>> convert_video(Path("video.mp4"), Path("video.ogv"))
        Traceback (most recent call last):
        ...
        rewardgen.errors.RewardgenError: cannot convert a video to '.ogv': use .webm or .gif
    """
    import subprocess

    import imageio_ffmpeg

    src, dst = Path(src), Path(dst)
    if dst.suffix not in (".webm", ".gif"):
        raise RewardgenError(f"cannot convert a video to '{dst.suffix}': use .webm or .gif")
    if not src.is_file():
        raise RewardgenError(f"no video at {src}")
    if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    filters = [f"fps={fps:g}"] if fps else []
    filters += [f"scale=w=min({width}\\,iw):h=-2:flags=lanczos"] if width else []  # shrink, never grow
    if dst.suffix == ".webm":
        codec = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"]
        codec += ["-b:v", "0", "-crf", "36", "-pix_fmt", "yuv420p", "-f", "webm"]
    else:  # one palette for the whole clip: small files without banding
        filters += ["split[a][b]", "[a]palettegen=max_colors=128[p]", "[b][p]paletteuse"]
        codec = ["-loop", "0", "-f", "gif"]
    tmp = dst.with_name(dst.name + ".part")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-an"]
    cmd += ["-filter_complex" if dst.suffix == ".gif" else "-vf", ",".join(filters)] if filters else []
    done = subprocess.run([*cmd, *codec, str(tmp)], capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RewardgenError(f"ffmpeg could not convert {src} to {dst.suffix}: {done.stderr.strip()[-300:]}")
    tmp.replace(dst)
    return dst
