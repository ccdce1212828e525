"""Run directories and what runs leave in them: the manifest, evaluation summaries
(:class:`EvalSummary`), training metrics, learning curves and videos, and a search's stop signal
(:class:`StopSignal`)."""

from rewardgen.runs.metrics import (
    MetricsWriter,
    annotate_frames,
    convert_video,
    episode_means,
    metrics_row,
    plot_learning_curve,
    read_metrics,
    write_video,
)
from rewardgen.runs.rundir import (
    RunDir,
    default_run_path,
    ended_if_it_fails,
    git_revision,
    orphaned,
    package_versions,
    process_alive,
)
from rewardgen.runs.stop import StopSignal
from rewardgen.runs.summary import CandidateRecord, EpisodeResult, EvalSummary

__all__ = [
    "CandidateRecord",
    "EpisodeResult",
    "EvalSummary",
    "MetricsWriter",
    "RunDir",
    "StopSignal",
    "annotate_frames",
    "convert_video",
    "default_run_path",
    "ended_if_it_fails",
    "episode_means",
    "git_revision",
    "metrics_row",
    "orphaned",
    "package_versions",
    "plot_learning_curve",
    "process_alive",
    "read_metrics",
    "write_video",
]
