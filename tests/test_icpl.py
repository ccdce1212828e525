"""ICPL end to end against the loopback LLM server: a judge compares each round's policies, the
next prompt holds the preferred and the rejected code, every answer is kept and reused."""

import json

import pytest
from test_synthesis import GOOD, config, run_search

from rewardgen.errors import RewardgenError
from rewardgen.feedback import Choice, Option, PreferenceStore, TerminalJudge, make_judge
from rewardgen.llm.testing import LoopbackLLMServer

# two rewards the synthetic judge can tell apart: the hopper-run-backward score is the backward
# speed, and FORWARD rewards running the wrong way
FORWARD = GOOD.replace('backward = -BACKWARD_WEIGHT * info["x_velocity"]', 'backward = info["x_velocity"]')


def test_icpl_asks_the_judge_and_prompts_with_the_preferred_and_rejected_code(tmp_path):
    with LoopbackLLMServer() as server:
        # round 0; round 1 (FORWARD again); the summary of round 0's preference, asked when the
        # prompt of round 2 first needs it; round 2
        server.push([GOOD, FORWARD], [GOOD, FORWARD], ["A rewards running backwards."], [GOOD, GOOD])
        cfg = config(method="icpl", judge="synthetic", iterations=3, final_seeds=0)
        run, summary = run_search(server, tmp_path, cfg)
        prompt = server.requests[1]["messages"][-1]["content"]
        asked_to_compare = server.requests[2]["messages"][-1]["content"]
        third = server.requests[3]["messages"][-1]["content"]
    answers = PreferenceStore(run.file("preferences.jsonl")).load()
    assert [a.round for a in answers] == ["iter0", "iter1", "iter2"]  # one per round, kept in the run
    first = answers[0]
    assert first.judge == "synthetic:score" and set(first.candidates) == {"cand0", "cand1"}
    scores = {c["index"]: c["score"] for c in summary["candidates"] if c["iteration"] == 0}
    assert first.best == f"cand{max(scores, key=scores.get)}"  # the judge ranked by the metric
    preferred = GOOD if first.best == "cand0" else FORWARD
    rejected = FORWARD if preferred is GOOD else GOOD
    code = lambda reply: reply.split("```python\n")[1].split("```")[0].strip()  # noqa: E731
    assert "a person watched videos" in prompt and "They preferred" in prompt
    assert prompt.index(code(preferred)) < prompt.index("liked the policy trained on this reward least")
    assert prompt.index(code(rejected)) > prompt.index("liked the policy trained on this reward least")
    assert "Reward reflection" in prompt  # each shown reward with its component traces
    # one extra LLM call per round says how the preferred and the rejected reward differed; later
    # prompts carry that history (the latest round is shown in full instead)
    assert "preferred the one trained on reward A" in asked_to_compare
    assert "differed like this" not in prompt
    assert "- iter0: A rewards running backwards." in third and "- iter1" not in third
    assert (run.path / "iter0" / "difference.md").read_text().startswith("A rewards running backwards")
    # the search's best is the last round's preferred reward; report.html shows each choice
    assert summary["best"]["iteration"] == 2 and f"cand{summary['best']['index']}" == answers[2].best
    report = run.file("report.html").read_text()
    assert f"Preferred <b>{first.best}</b>, rejected <b>{first.worst}</b>" in report


def test_a_resumed_icpl_round_reuses_the_answer_given(tmp_path):
    """Answers already on disk are kept: a rerun of the same run directory does not ask again."""

    class Refuses:
        name, needs_videos = "never", False

        def __call__(self, round_id, options):
            raise AssertionError(f"asked again for {round_id}")

    with LoopbackLLMServer() as server:
        server.push([GOOD, FORWARD])
        run, _ = run_search(server, tmp_path, config(method="icpl", iterations=1, final_seeds=0, videos=0))
        given = PreferenceStore(run.file("preferences.jsonl")).load()
    from rewardgen.synthesis import PreferenceSelector
    from rewardgen.synthesis.candidate import Candidate
    from rewardgen.tasks import get_task

    cands = [Candidate.load(run.path / "iter0" / f"cand{i}") for i in range(2)]
    selector = PreferenceSelector(Refuses(), PreferenceStore(run.file("preferences.jsonl")))
    best = selector.select(get_task("hopper-run-backward"), "iter0", cands)
    assert best.path.name == given[0].best


def test_bad_answers_are_refused_and_change_nothing(tmp_path):
    store = PreferenceStore(tmp_path / "preferences.jsonl")
    with pytest.raises(RewardgenError, match="must differ"):
        Choice(round="iter0", candidates=("cand0", "cand1"), best="cand0", worst="cand0")
    with pytest.raises(RewardgenError, match="was not shown"):
        Choice(round="iter0", candidates=("cand0", "cand1"), best="cand7")
    store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand1", worst="cand0"))
    with pytest.raises(RewardgenError, match="already has an answer"):
        store.add(Choice(round="iter0", candidates=("cand0", "cand1"), best="cand0", worst="cand1"))
    assert [c.best for c in store.load()] == ["cand1"]
    assert json.loads(store.path.read_text().splitlines()[0])["best"] == "cand1"


def test_the_terminal_judge_validates_what_the_person_types(tmp_path):
    answers = iter(["", "9", "2", "2", "1", "it hops sideways"])
    shown: list[str] = []
    judge = TerminalJudge(rater="ana", ask=lambda q: next(answers), show=shown.append)
    films = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for film in films:
        film.write_bytes(b"a film")
    choice = judge("iter3", [Option("cand0", films[0]), Option("cand4", films[1])])
    assert (choice.best, choice.worst, choice.words, choice.rater) == (
        "cand4",
        "cand0",
        "it hops sideways",
        "ana",
    )
    assert sum("answer a number from 1 to 2" in s for s in shown) == 3 and any(
        "must differ" in s for s in shown
    )


def test_the_terminal_judge_shows_each_video_and_a_gif_preview(tmp_path):
    import imageio.v3 as iio
    import numpy as np

    from rewardgen.runs import write_video

    videos = []
    for name in ("cand1", "cand2"):
        video = tmp_path / name / "video.mp4"
        video.parent.mkdir()
        write_video([np.full((64, 64, 3), 10 * f, np.uint8) for f in range(20)], video, fps=20)
        videos.append(video)
    video = videos[0]
    shown: list[str] = []
    answers = iter(["2", "1", ""])
    TerminalJudge(ask=lambda q: next(answers), show=shown.append)(
        "iter0", [Option("cand0"), Option("cand1", video), Option("cand2", videos[1])]
    )
    assert any("cand0 is left out" in s for s in shown) and any(str(video) in s for s in shown)
    preview = video.with_name("preview.gif")
    assert any(s.strip() == f"preview: {preview}" for s in shown)
    frames = iio.imread(preview, index=None)  # a looping GIF of the video, at 10 frames per second
    assert frames.shape[0] == 10 and frames.shape[2] == 64


def test_judges_from_the_command_line():
    noisy = make_judge("synthetic:by=env_return,noise=0.5", seed=1)
    assert noisy.name == "synthetic:env_return,noise=0.5"
    assert make_judge("terminal:rater=bo").rater == "bo"
    for bad, message in [
        ("oracle", "unknown judge"),
        ("synthetic:noise", "key=value"),
        ("synthetic:x=1", "by= and noise="),
    ]:
        with pytest.raises(RewardgenError, match=message):
            make_judge(bad)


def test_an_icpl_round_asks_again_for_rewards_that_did_not_train(tmp_path):
    """K policies to compare: a refused or failed candidate is replaced by a new sample (bounded);
    new ones follow the others in the round (cand2, cand3) and are shown to the judge."""
    from test_synthesis import BROKEN

    with LoopbackLLMServer() as server:
        server.push([GOOD, BROKEN], [BROKEN], [FORWARD])  # round 0; a failed top-up; a good one
        cfg = config(method="icpl", iterations=1, final_seeds=0, videos=0, regenerate=2)
        run, summary = run_search(server, tmp_path, cfg)
        top_up = server.requests[1]
    assert top_up.get("n", 1) == 1 and top_up["messages"] == server.requests[0]["messages"]
    statuses = [(c["index"], c["status"]) for c in summary["candidates"]]
    assert statuses == [(0, "trained"), (1, "failed"), (2, "failed"), (3, "trained")]
    answer = PreferenceStore(run.file("preferences.jsonl")).load()[0]
    assert set(answer.candidates) == {"cand0", "cand3"}
    with LoopbackLLMServer() as server:  # bounded: one top-up allowed, it fails, the round goes on
        server.push([GOOD, BROKEN], [BROKEN])
        cfg = config(method="icpl", iterations=1, final_seeds=0, videos=0, regenerate=1)
        run, summary = run_search(server, tmp_path / "bounded", cfg)
    assert len(server.requests) == 2 and summary["best"]["index"] == 0
    assert not run.file("preferences.jsonl").exists()  # one policy: nothing to compare


def test_a_policy_whose_filming_failed_is_filmed_again_or_left_out(tmp_path):
    """A loaded machine cuts a film short: the judge is shown only the policies with a video;
    with fewer than two, the round asks nobody and keeps the best by the metric."""
    import numpy as np

    from rewardgen.runs import write_video
    from rewardgen.synthesis.candidate import Candidate
    from rewardgen.synthesis.icpl import PreferenceSelector

    cands = []
    for k, score in enumerate((1.0, 3.0, 2.0)):
        folder = tmp_path / "iter0" / f"cand{k}"
        (folder / "train").mkdir(parents=True)
        cands.append(Candidate(0, k, "trained", score=score, path=folder))

    def film_all_but(*skipped):
        def film(todo):
            for c in todo:
                if c.index not in skipped:
                    frames = [np.full((16, 16, 3), 9 * f, np.uint8) for f in range(5)]
                    write_video(frames, c.path / "train" / "video.mp4", fps=5)
            return {c.path: "evaluation stopped after 0 of 1 episodes" for c in todo if c.index in skipped}

        return film

    class Person:
        name, needs_videos = "person", True

        def __init__(self):
            self.shown = []

        def __call__(self, round_id, options):
            self.shown.append([(o.id, o.has_video, o.note) for o in options])
            answers = iter(["1", "2", ""])
            return TerminalJudge(ask=lambda q: next(answers), show=lambda line: None)(round_id, options)

    person, lines = Person(), []
    selector = PreferenceSelector(
        person, PreferenceStore(tmp_path / "p.jsonl"), film_all_but(1), log=lines.append
    )
    best = selector.select(None, "iter0", cands)
    assert person.shown[0][1] == ("cand1", False, "evaluation stopped after 0 of 1 episodes")
    choice = PreferenceStore(tmp_path / "p.jsonl").for_round("iter0")
    assert choice.candidates == ("cand0", "cand2") and best is cands[0]  # cand1 was never offered
    for c in cands:
        (c.path / "train" / "video.mp4").unlink(missing_ok=True)
    person = Person()
    selector = PreferenceSelector(
        person, PreferenceStore(tmp_path / "q.jsonl"), film_all_but(1, 2), log=lines.append
    )
    assert selector.select(None, "iter0", cands) is cands[0]  # only cand0 filmed: nothing to compare
    assert person.shown == [] and "1 of 3 policies could be filmed" in lines[-1]


def _code(reply):
    return reply.split("```python\n")[1].split("```")[0].strip()


def test_a_room_of_raters_with_opposite_tastes_each_follow_their_own_lineage(tmp_path):
    """Two synthetic raters, one for running forward and one backward, rank each round by what
    each policy did (its measured x_velocity); following each rater, the next round asks for a
    reward from each rater's own choice, and the search ends with a reward per rater."""
    tastes = ("synthetic:taste=x_velocity", "synthetic:taste=-x_velocity")
    with LoopbackLLMServer() as server:
        server.push([GOOD, FORWARD], [FORWARD], [GOOD])  # round 0; each rater's prompt in round 1
        cfg = config(method="icpl", judge=tastes, follow="each", iterations=2, final_seeds=0, videos=0)
        run, summary = run_search(server, tmp_path, cfg)
        prompts = {r: server.requests[k]["messages"][-1]["content"] for k, r in ((1, "fast"), (2, "back"))}
        asked = [server.requests[k].get("n", 1) for k in (1, 2)]
    assert asked == [1, 1]  # K=2 shared between the two lineages
    room = PreferenceStore(run.file("room_answers.jsonl"), per_rater=True)
    for rnd in ("iter0", "iter1"):
        fast, back = room.answers(rnd)
        assert (fast.rater, back.rater) == ("x_velocity", "-x_velocity")
        speed = {
            c: json.loads((run.path / rnd / c / "measures.json").read_text())["x_velocity"]
            for c in fast.candidates
        }
        assert fast.best == max(speed, key=speed.get) and back.best == min(speed, key=speed.get)
    code = {"cand0": _code(GOOD), "cand1": _code(FORWARD)}
    first_fast, first_back = room.answers("iter0")
    assert prompts["fast"].index(code[first_fast.best]) < prompts["fast"].index("least")
    assert "x_velocity, one of several people rating them" in prompts["fast"]
    assert prompts["back"].index(code[first_back.best]) < prompts["back"].index("least")
    assert (run.path / "iter1" / "prompt-minus-x_velocity.md").read_text() == prompts["back"]
    manifest = json.loads(run.file("manifest.json").read_text())
    assert manifest["rounds"][1]["lineages"] == {"x_velocity": ["cand0"], "-x_velocity": ["cand1"]}
    last_fast, last_back = room.answers("iter1")
    files = {"x_velocity": "best_reward-x_velocity.py", "-x_velocity": "best_reward-minus-x_velocity.py"}
    for rater, answer in (("x_velocity", last_fast), ("-x_velocity", last_back)):
        kept = summary["raters"][rater]
        assert (kept["iteration"], f"cand{kept['index']}") == (1, answer.best)
        assert (
            run.file(files[rater]).read_text() == (run.path / "iter1" / answer.best / "reward.py").read_text()
        )
    report = run.file("report.html").read_text()
    assert "Each rater's reward" in report and "best_reward-minus-x_velocity.py" in report
    assert f"<td>-x_velocity</td><td>{last_back.best} (from -x_velocity" in report


def test_following_the_room_shows_each_raters_choice_and_words(tmp_path):
    """Following the room, one prompt carries the room's choice (a Borda count) and, below it,
    each rater's choice with their words."""

    class Says:
        needs_videos = False

        def __init__(self, rater, pick, words):
            self.rater, self.name, self.pick, self.words = rater, "person", pick, words

        def __call__(self, round_id, options):
            ids = [o.id for o in options]
            best = ids[self.pick]
            return Choice(round_id, tuple(ids), best, worst=ids[1 - self.pick], words=self.words, rater="")

        def close(self):
            pass

    from rewardgen.feedback.room import Room
    from rewardgen.synthesis.icpl import PreferenceSelector

    with LoopbackLLMServer() as server:
        server.push([GOOD, FORWARD], [GOOD, GOOD])
        cfg = config(method="icpl", iterations=2, final_seeds=0, videos=0)
        run_dir = tmp_path / "run"

        def room_selector(config, task, run, executor, client, log):
            store = PreferenceStore(run.file("room_answers.jsonl"), per_rater=True)
            room = Room([Says("ana", 0, "ana wants it backwards"), Says("bob", 1, "")], store)
            return PreferenceSelector(room, PreferenceStore(run.file("preferences.jsonl")), log=log)

        from test_synthesis import TASK

        from rewardgen.llm import LLMClient, LLMSettings
        from rewardgen.runs import RunDir
        from rewardgen.synthesis import synthesize
        from rewardgen.tasks import get_task

        run = RunDir.create(TASK, "icpl", {}, out=run_dir)
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        try:
            summary = synthesize(
                cfg, client, run, selector=room_selector(cfg, get_task(TASK), run, None, client, print)
            )
        finally:
            client.close()
        prompt = server.requests[1]["messages"][-1]["content"]
    assert "2 people (ana, bob) watched videos" in prompt and "Each rater's choice:" in prompt
    assert "- ana preferred cand0 (the preferred reward above) and liked cand1 least" in prompt
    assert "ana wants it backwards" in prompt and "- bob preferred cand1" in prompt
    room = PreferenceStore(run.file("preferences.jsonl")).for_round("iter0")
    assert room.rater == "ana+bob" and room.best == "cand0"  # a tie goes to the order shown
    assert set(summary["raters"]) == {"ana", "bob"}
    report = run.file("report.html").read_text()
    assert "<td>ana</td><td>cand0</td><td>cand1</td><td>ana wants it backwards</td>" in report


def test_following_each_rater_needs_a_room():
    from rewardgen.synthesis.icpl import PreferenceSelector

    with pytest.raises(RewardgenError, match="--follow each needs a room of raters"):
        PreferenceSelector(make_judge("synthetic"), None, follow="each")
    with pytest.raises(RewardgenError, match="follow must be one of room, each, got 'all'"):
        PreferenceSelector(make_judge("synthetic"), None, follow="all")
