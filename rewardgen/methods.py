"""Every method in one table: what it is, what it needs, how it is run, what it records.

The command line, ``rewardgen bench`` and ``rewardgen runs`` read this table instead of lists of
names of their own: a new method is one entry here plus its own package (and, for a search
method, its selector in :data:`rewardgen.synthesis.methods.METHOD_TABLE`). The table imports
nothing heavy. A run's manifest names its method (``method``); what that run holds follows from
the entry's ``family``.

Example:
    >>> [m.name for m in METHODS.values() if m.family == "search"]
    ['text2reward', 'evolution', 'icpl']
    >>> get_method_info("icpl").needs
    ('llm', 'judge')
    >>> get_method_info("vlm").command
    'rewardgen vlm train'
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardgen.errors import RewardgenError

__all__ = ["DIRECT_METHODS", "METHODS", "SEARCH_METHODS", "MethodInfo", "get_method_info"]


@dataclass(frozen=True)
class MethodInfo:
    """One method.

    Attributes:
        name: Its name on the command line and in run manifests (``method``).
        family: ``"search"`` (the LLM writes reward programs, rounds of candidates are trained
            and compared: ``rewardgen synthesize --method NAME``), ``"direct"`` (a reward made
            without a search, one policy trained on it) or ``"preference"`` (a reward model
            fitted to a judge's answers while one policy trains).
        summary: What it does, in a line.
        needs: What a run of it needs: ``"llm"`` (an OpenAI-compatible endpoint), ``"judge"``
            (a person or a synthetic judge), ``"vlm"`` (the vlm extra: an image-text model),
            ``"nethack"`` (the nethack extra and a task with a message field).
        command: The command that runs it.
        records: What its run directory holds besides a training run's files.
        one_round: A search that runs one round whatever ``--iterations`` says (Text2Reward).
        judged: Its rounds are judged by a person (the preference page counts them; ICPL asks
            the LLM once more after each round but the last, for the history of the choices).
        samples: A search's rewards per round by default (K).
        iterations: A search's rounds by default.
        service: Trains beside a service of its own (ONI's annotation service): one run at a time.
        paper: Where it comes from.
    """

    name: str
    family: str
    summary: str
    needs: tuple[str, ...]
    command: str
    records: str
    one_round: bool = False
    judged: bool = False
    samples: int = 4
    iterations: int = 3
    service: bool = False
    paper: str = ""


_SEARCH_RECORDS = "iter<k>/ (prompt.md, cand<i>/: reply, reward.py, train/), best_reward.py, report.html"

#: The methods by name, in the order the command line lists them.
METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo(
            "text2reward",
            "search",
            "an LLM writes dense reward code from the goal and the task's fields, in one round",
            ("llm",),
            "rewardgen synthesize --method text2reward",
            _SEARCH_RECORDS,
            one_round=True,
            paper="Xie et al., Text2Reward (ICLR 2024)",
        ),
        MethodInfo(
            "evolution",
            "search",
            "K rewards a round, trained and scored; the next round improves on the best from its "
            "reward reflection",
            ("llm",),
            "rewardgen synthesize --method evolution",
            _SEARCH_RECORDS,
            paper="Ma et al., Eureka (ICLR 2024)",
        ),
        MethodInfo(
            "icpl",
            "search",
            "a judge picks the best and worst video of each round; the LLM improves the reward "
            "from that choice",
            ("llm", "judge"),
            "rewardgen synthesize --method icpl",
            _SEARCH_RECORDS + ", preferences.jsonl, rounds/ (the page's published rounds)",
            judged=True,
            samples=6,  # the paper's K and rounds
            iterations=5,
            paper="ICPL: In-Context Preference Learning (2024)",
        ),
        MethodInfo(
            "prefppo",
            "preference",
            "PPO on a Bradley-Terry reward-model ensemble fitted to a judge's answers on clips of "
            "the policy as it trains",
            ("judge",),
            "rewardgen prefppo",
            "preferences.jsonl, queries/ (the clips), reward_model.pt, prefppo.json",
            judged=True,
            paper="Christiano et al., deep RL from human preferences (2017)",
        ),
        MethodInfo(
            "vlm",
            "direct",
            "VLM-RM: a CLIP model scores rendered frames against the task's prompts (no LLM)",
            ("vlm",),
            "rewardgen vlm train",
            "the model and prompts in manifest.json; video.mp4 shows each frame's reward",
            paper="Rocamonde et al., VLM-RM (2023)",
        ),
        MethodInfo(
            "oni",
            "direct",
            "ONI: an LLM labels NetHack messages while the agent trains (tasks with a message field)",
            ("llm", "nethack"),
            "rewardgen oni train",
            "llm/transcript.jsonl (the annotation service's calls), oni_labels in manifest.json",
            service=True,
            paper="ONI: online intrinsic rewards from LLM feedback (2024)",
        ),
    )
}

#: The methods ``rewardgen synthesize`` runs.
SEARCH_METHODS = tuple(name for name, m in METHODS.items() if m.family == "search")
#: Methods that make a reward without a search (a bench cell trains one policy on it), by summary.
DIRECT_METHODS = {name: m.summary for name, m in METHODS.items() if m.family == "direct"}


def get_method_info(name: str) -> MethodInfo:
    """The entry of method ``name``, or an error that lists them."""
    if name not in METHODS:
        raise RewardgenError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]
