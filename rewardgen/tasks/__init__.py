"""The task catalog: env ids per gymnasium version, goals, named fields, success metrics."""

from rewardgen.tasks.derive import derive_task, materialize
from rewardgen.tasks.fields import StateFieldsWrapper, TaskFields
from rewardgen.tasks.make import episode_metrics, make_env, make_env_fn, task_fields, wrapper_kwargs
from rewardgen.tasks.spec import (
    ENV_REWARD,
    VERDICT_EPISODES,
    FieldSpec,
    MetricSpec,
    TaskSpec,
    UnknownTaskError,
    catalog_dir,
    env_version,
    get_task,
    list_tasks,
    load_task_file,
    save_task_file,
    task_ref,
)

__all__ = [
    "ENV_REWARD",
    "VERDICT_EPISODES",
    "FieldSpec",
    "MetricSpec",
    "StateFieldsWrapper",
    "TaskFields",
    "TaskSpec",
    "UnknownTaskError",
    "catalog_dir",
    "derive_task",
    "env_version",
    "episode_metrics",
    "get_task",
    "list_tasks",
    "load_task_file",
    "make_env",
    "make_env_fn",
    "materialize",
    "save_task_file",
    "task_fields",
    "task_ref",
    "wrapper_kwargs",
]
