"""``rewardgen bench``: reward-design methods and LLMs compared across tasks.

For each task x method x seed the full pipeline runs as a user would run it (``synthesize``;
ONI and VLM-RM rewards are trained once), beside baselines trained the same way (the task's
reference reward, a sparse success-only one, the env's own reward); the tables give each cell's
success, Eureka's human-normalized score, time to the first success, LLM calls, tokens and
dollars, refusals and failures, and the reward-hacking alarm. Replayable offline
(``--llm replay:BENCH_DIR``) and resumable.
"""

from rewardgen.bench.config import (
    BASELINES,
    DIRECT_METHODS,
    SUITES,
    BenchConfig,
    Cell,
    sparse_program,
    suite_tasks,
)
from rewardgen.bench.runner import cell_result, plan_text, run_bench
from rewardgen.bench.table import aggregate, normalized_score, write_outputs

__all__ = [
    "BASELINES",
    "DIRECT_METHODS",
    "SUITES",
    "BenchConfig",
    "Cell",
    "aggregate",
    "cell_result",
    "normalized_score",
    "plan_text",
    "run_bench",
    "sparse_program",
    "suite_tasks",
    "write_outputs",
]
