"""Prompts of the code-writing methods: the first request, and the feedback that improves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardgen.runs import EvalSummary
from rewardgen.tasks import ENV_REWARD, TaskSpec

__all__ = ["SYSTEM", "feedback_message", "initial_messages", "preference_message", "refine_message"]

SYSTEM = (
    "You are a reward engineer. You write dense reward functions in Python that let a reinforcement "
    "learning agent (PPO) learn a behaviour described in one sentence. Your rewards are readable, "
    "numerically well-scaled and use only numpy and math."
)

SIGNATURE = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    # Every argument is batched: n transitions at once, the batch axis first.
    # info["<field>"] is a numpy array of shape (n,) or (n, ...), as listed above.
    ...
    return total, {"component_name": component, ...}  # total and each component: shape (n,)
```"""

GUIDANCE = """Reward design:
- Reward progress at every step, not only success: velocities, heights, distances to a goal.
- Name each term in the components dict; keep terms on similar scales (about -10..10 per step).
- Shape transformed terms with a temperature, e.g. np.exp(-distance / 0.1), and name the temperature.
- Penalise large actions lightly, e.g. 0.1 * np.sum(action**2, axis=1).
- Module-level UPPER_CASE constants are tunable parameters: put weights there.
- Only numpy and math; no files, network, processes, eval/exec, or dunder attributes."""


def _task_text(task: TaskSpec, goal: str | None) -> str:
    return (
        f"Goal: {goal or task.goal}\n\n"
        f"The environment ({task.gym_id}), described as the fields your function receives:\n\n"
        f"{task.describe()}"
    )


def initial_messages(
    task: TaskSpec, goal: str | None = None, examples: Sequence[tuple[str, str]] = ()
) -> list[dict[str, str]]:
    """Text2Reward's prompt: role, goal, env description, guidance, signature; few-shot when
    ``examples`` holds (goal, reward code) pairs written by experts for related tasks."""
    shots = ""
    if examples:
        shots = (
            "Rewards that experts wrote for related tasks (other robots may have other fields):\n\n"
            + "\n\n".join(f"# Goal: {g}\n```python\n{code.strip()}\n```" for g, code in examples)
            + "\n\n"
        )
    guidance = GUIDANCE
    terms = task.env_reward_terms
    if task.metric.field == ENV_REWARD and terms is not None and terms.terms:
        guidance += (
            "\n- Success is measured on the env's own reward, which is exactly the sum of the fields "
            "named above with their weights: charge what it charges (with the same weights) and add "
            "shaping on top only where it helps."
        )
    user = (
        f"Write a reward function for this task.\n\n{_task_text(task, goal)}\n\n{guidance}\n\n{shots}"
        f"Required signature:\n{SIGNATURE}\n\nReply with one ```python code block."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _trajectory(values: Sequence[float], points: int = 8) -> str:
    if not values:
        return "[]"
    step = max(1, len(values) // points)
    picked = list(values[::step])[:points]
    if picked[-1] != values[-1]:
        picked.append(values[-1])
    return "[" + ", ".join(f"{v:.3g}" for v in picked) + "]"


def run_alarm(cand: Any) -> Any:
    """The reward-hacking alarm's verdict a candidate's training run recorded (None: none)."""
    from rewardgen.diagnostics.alarm import recorded_verdict

    path = getattr(cand, "path", None)
    return recorded_verdict(path / "train") if path is not None else None


def reflection_text(task: TaskSpec, curves: dict[str, list[float]], alarm: Any = None) -> str:
    """Eureka's reward reflection: every component's statistics along training, the success
    metric's trajectory, and the env's own return; then the reward-hacking alarm's reasons when it
    fired (``alarm``: the run's verdict; None: judged from the curves alone)."""
    lines = ["Reward reflection (episode sums along training, oldest first):"]
    if not curves.get("timesteps"):
        return lines[0] + "\n- no episode finished during training (the budget is shorter than an episode)"
    for key, values in curves.items():
        if key.startswith("component/") and values:
            name = key.split("/", 1)[1]
            lines.append(
                f"- component '{name}': mean {sum(values) / len(values):.3g}, min {min(values):.3g}, "
                f"max {max(values):.3g}, trajectory {_trajectory(values)}"
            )
    metric = curves.get("success_metric_mean", [])
    lines.append(f"- success metric ({task.metric.describe()}): trajectory {_trajectory(metric)}")
    lines.append(f"- episode return of your reward: {_trajectory(curves.get('reward_return_mean', []))}")
    lines.append(f"- the env's own episode return: {_trajectory(curves.get('env_return_mean', []))}")
    terms = task.env_reward_terms.terms if task.env_reward_terms is not None else {}
    for name, values in curves.items():
        if name.startswith("env_term/") and values:
            field = name.split("/", 1)[1]
            weight = terms.get(field, 1.0)
            lines.append(
                f'- its term {"" if weight == 1 else f"{weight:.6g} * "}info["{field}"] (episode sum): '
                f"mean {sum(values) / len(values):.3g}, trajectory {_trajectory(values)}"
            )
    if alarm is None:
        from rewardgen.diagnostics.alarm import hacking_verdict

        alarm = hacking_verdict(curves, None, task.metric)
    if alarm.hacked:
        lines.append(
            f"- REWARD HACKING ALARM: {'; '.join(alarm.reasons)}. The policy maximises your reward "
            "without doing the task: remove or bound the term it exploits and pay for the task's "
            "progress itself."
        )
    return "\n".join(lines)


def feedback_message(
    task: TaskSpec, best: Any | None, failures: Sequence[Any], curves: dict[str, list[float]] | None
) -> dict[str, str]:
    """The next user message of an evolution round: the best code with its reflection, and the
    reasons the failed candidates failed (so the model can repair them)."""
    parts = []
    if best is not None:
        parts.append(
            f"We trained a policy on each of your rewards. The best one (success metric "
            f"{best.eval.success_metric_mean:.3g}, success rate {best.eval.success_rate:.0%}) was:\n"
            f"```python\n{best.code}```"
        )
        if curves:
            parts.append(reflection_text(task, curves, run_alarm(best)))
            rising = _still_rising(task, curves)
            if rising:
                parts.append(rising)
        parts.append(
            "Write an improved reward. If the success metric stays near zero, rewrite the reward "
            "from scratch; if a component is nearly constant, rescale or drop it; if one component "
            "dominates the others, scale it down."
        )
    else:
        parts.append("None of your rewards could be trained. Write a reward that runs.")
    if failures:
        parts.append("These candidates failed:")
        for cand in failures:
            parts.append(f"- candidate {cand.index}: {cand.reason}")
        parts.append("Fix these errors in the new reward.")
    parts.append(f"Required signature:\n{SIGNATURE}\nReply with one ```python code block.")
    return {"role": "user", "content": "\n\n".join(parts)}


def _still_rising(task: TaskSpec, curves: dict[str, list[float]]) -> str | None:
    """A sentence for a policy whose success metric was still improving when training ended: it
    may need more steps, not a new reward."""
    from rewardgen.synthesis.continuation import slope

    steps, values = curves.get("timesteps") or [], curves.get("success_metric_mean") or []
    rate = slope(task, steps, values)
    if rate is None or rate <= 0:
        return None
    k = min(4, len(values))
    return (
        f"Its success metric was still improving when its training ended ({values[-k]:.3g} -> "
        f"{values[-1]:.3g} over its last {k} logged points, at {int(steps[-1]):,} steps): "
        "the reward may need more training rather than a rewrite, so keep what works in it."
    )


def preference_message(
    task: TaskSpec,
    preferred: Any,
    rejected: Any | None,
    words: str,
    curves: dict[str, dict[str, list[float]]],
    failures: Sequence[Any],
    history: Sequence[tuple[str, str]] = (),
    raters: Sequence[Any] = (),
    rater: str = "",
) -> dict[str, str]:
    """ICPL's next user message: a person watched the round's policies and preferred one reward
    over another; both codes with their reward reflections (``curves`` by candidate path name),
    the person's words, and the reasons of the candidates that failed. A room's message
    (``raters``: each rater's answer) shows the room's choice and then each rater's, with their
    words; a rater's own lineage (``rater``) shows that rater's choice alone."""
    if raters:
        names = ", ".join(a.rater for a in raters)
        seen = f"{len(raters)} people ({names}) watched videos of all of them"
        they = "Counting their rankings together (a Borda count), the room"
    elif rater:
        seen, they = f"{rater}, one of several people rating them, watched videos of all of them", rater
    else:
        seen, they = "a person watched videos of all of them", "They"
    parts = [
        f"We trained a policy on each of your rewards and {seen}. {they} preferred the policy trained "
        "on this reward:",
        f"```python\n{preferred.code}```",
    ]
    if curves.get(preferred.path.name):
        parts.append(reflection_text(task, curves[preferred.path.name], run_alarm(preferred)))
    if rejected is not None:
        least = "They" if they == "They" else they
        parts += [f"{least} liked the policy trained on this reward least:", f"```python\n{rejected.code}```"]
        if curves.get(rejected.path.name):
            parts.append(reflection_text(task, curves[rejected.path.name], run_alarm(rejected)))
    if raters:
        shown = {preferred.path.name: "the preferred reward above"}
        if rejected is not None:
            shown[rejected.path.name] = "the least liked reward above"
        lines = []
        for a in raters:
            line = f"- {a.rater} preferred {a.best}" + (f" ({shown[a.best]})" if a.best in shown else "")
            if a.worst:
                line += f" and liked {a.worst} least" + (f" ({shown[a.worst]})" if a.worst in shown else "")
            text = a.words.strip()
            lines.append(line + (f', and said: "{text}"' if text else ""))
        parts.append("Each rater's choice:\n" + "\n".join(lines))
    elif words.strip():
        parts.append(f'{"The person" if not rater else rater} said:\n"""\n{words.strip()}\n"""')
    if history:
        parts.append(
            "In earlier rounds, the preferred and the rejected rewards differed like this:\n"
            + "\n".join(f"- {round_id}: {text}" for round_id, text in history)
        )
    follow = (
        "each rater's words, where they differ keeping what most of them want"
        if raters
        else (
            "the person's words where they give any" if not rater else f"{rater}'s words where they give any"
        )
    )
    parts.append(
        "Write an improved reward: keep what makes the preferred behaviour, drop what leads to the "
        f"rejected one, and follow {follow}."
    )
    if failures:
        parts.append("These candidates failed:")
        parts += [f"- candidate {cand.index}: {cand.reason}" for cand in failures]
        parts.append("Fix these errors in the new reward.")
    parts.append(f"Required signature:\n{SIGNATURE}\nReply with one ```python code block.")
    return {"role": "user", "content": "\n\n".join(parts)}


def difference_request(preferred: str, rejected: str) -> str:
    """ICPL's summary request: how the preferred reward differs from the rejected one."""
    return (
        "A person compared the behaviour of two policies. They preferred the one trained on "
        f"reward A over the one trained on reward B.\n\nReward A:\n```python\n{preferred}```\n\n"
        f"Reward B:\n```python\n{rejected}```\n\nIn two or three sentences, without code, say how "
        "reward A differs from reward B in what it encourages."
    )


def _policy_text(cand: Any, ev: EvalSummary | None) -> str:
    """What the policy trained on ``cand`` did in evaluation (``ev``: its eval.json), in words and
    numbers."""
    if cand.status != "trained" or ev is None:
        return f"This reward could not be trained: {cand.reason}"
    lines = [
        "We trained a policy on it and evaluated it:",
        f"- success metric ({ev.metric or 'task metric'}): {ev.success_metric_mean:.3g}, "
        f"success rate {ev.success_rate:.0%}",
        f"- the env's own return {ev.env_return_mean:.4g}, your reward's return {ev.reward_return_mean:.4g}",
    ]
    episodes = ev.episodes
    if episodes:
        lengths = [e.length for e in episodes]
        lines.append(f"- episode lengths: {', '.join(str(n) for n in lengths)}")
        names = list(episodes[0].components)
        for name in names:
            vals = [e.components.get(name, 0.0) for e in episodes]
            lines.append(f"- component '{name}' per episode: {', '.join(f'{v:.3g}' for v in vals)}")
    return "\n".join(lines)


def refine_message(
    task: TaskSpec,
    cand: Any,
    evaluation: EvalSummary | None,
    curves: dict[str, list[float]] | None,
    feedback: str,
) -> dict[str, str]:
    """Text2Reward's refinement: after the person watched the policy, their words, what the
    policy did (``evaluation``, per episode), and the reflection of its training, asking for a
    corrected reward."""
    parts = [_policy_text(cand, evaluation)]
    if curves:
        parts.append(reflection_text(task, curves, run_alarm(cand)))
    parts.append(f'A person watched the policy and said:\n"""\n{feedback.strip()}\n"""')
    parts.append(
        "Change the reward so that the behaviour the person asks for is rewarded and the behaviour "
        "they object to is not. Keep what works; explain nothing outside the code."
    )
    parts.append(f"Required signature:\n{SIGNATURE}\nReply with one ```python code block.")
    return {"role": "user", "content": "\n\n".join(parts)}
