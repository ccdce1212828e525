"""VLM-RM with a tiny randomly initialised CLIP saved as a real checkpoint and loaded through the
real loading code: the formula, its two limits, batching, goal images, bad input, training."""

import pickle

import numpy as np
import pytest

pytest.importorskip("transformers")

from rewardgen.errors import RewardgenError
from rewardgen.vlm import HFModel, VLMReward, VLMSpec, goal_baseline_reward, load_model
from rewardgen.vlm.testing import make_tiny_clip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="module")
def model(tiny):
    return HFModel(tiny)


def frames(n, seed=0, size=(40, 56)):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *size, 3), dtype=np.uint8)


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_the_reward_is_the_papers_formula(alpha):
    import torch

    rng = np.random.default_rng(1)
    x, g, b = unit(rng.normal(size=(5, 8))), unit(rng.normal(size=8)), unit(rng.normal(size=8))
    d = g - b
    P = alpha * np.outer(d, d) / (d @ d) + (1 - alpha) * np.eye(8)  # the projection, written out
    expected = 1 - 0.5 * np.sum(((x - g) @ P) ** 2, axis=1)
    got = goal_baseline_reward(*(torch.tensor(a) for a in (x, g, b)), alpha).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_alpha_zero_is_cosine_similarity_and_alpha_one_only_the_goal_direction(model):
    import torch

    cos = VLMReward(model, goal=["a robot kneeling"]).score(frames(4))
    x = model.encode_images(frames(4)).numpy()
    g = model.encode_text(["a robot kneeling"]).numpy()[0]
    np.testing.assert_allclose(cos, x @ g, atol=1e-5)
    rng = np.random.default_rng(2)
    g, b = unit(rng.normal(size=8)), unit(rng.normal(size=8))
    d = g - b
    x = unit(rng.normal(size=(3, 8)))
    sideways = rng.normal(size=8)
    sideways -= (sideways @ d) / (d @ d) * d  # orthogonal to goal - baseline
    r = [
        goal_baseline_reward(torch.tensor(v), torch.tensor(g), torch.tensor(b), 1.0)
        for v in (x, x + sideways)
    ]
    np.testing.assert_allclose(r[0].numpy(), r[1].numpy(), rtol=1e-10)
    r_half = [
        goal_baseline_reward(torch.tensor(v), torch.tensor(g), torch.tensor(b), 0.5)
        for v in (x, x + sideways)
    ]
    assert not np.allclose(r_half[0].numpy(), r_half[1].numpy())


def test_batches_score_as_frame_by_frame_and_goal_images_mix_with_prompts(model):
    reward = VLMReward(model, goal=["a robot kneeling"], baseline=["a robot"], alpha=0.5, batch_size=3)
    shots = frames(7)
    one_by_one = np.concatenate([reward.score(f[None]) for f in shots])
    np.testing.assert_allclose(reward.score(shots), one_by_one, atol=1e-5)
    picture = frames(1, seed=9, size=(64, 64))[0]
    mixed = VLMReward(model, goal=["a robot kneeling"], goal_images=[picture])
    g = (model.encode_text(["a robot kneeling"])[0] + model.encode_images(picture[None])[0]) / 2
    np.testing.assert_allclose(mixed.goal.numpy(), g.numpy(), atol=1e-6)
    only_image = VLMReward(model, goal_images=[picture])
    assert only_image.score(picture[None])[0] == pytest.approx(1.0, abs=1e-5)  # the goal itself


def test_the_vector_wrapper_scores_every_env_frame_in_one_call(model):
    from stable_baselines3.common.env_util import make_vec_env

    from rewardgen.tasks import make_env_fn
    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    reward = VLMReward(model, goal=["a robot running"], baseline=["a robot"], alpha=0.5)
    calls = []
    score = reward.score
    reward.score = lambda f: calls.append(len(f)) or score(f)  # type: ignore[method-assign]
    venv = SB3RewardVecWrapper(
        make_vec_env(make_env_fn("halfcheetah-run", render_mode="rgb_array"), n_envs=3, seed=0), reward
    )
    venv.reset()
    _, rewards, _, _ = venv.step(np.zeros((3, 6)))
    shots = np.stack(venv.venv.get_images())
    venv.close()
    assert calls == [3]  # one call for the three envs
    np.testing.assert_allclose(rewards, np.concatenate([score(f[None]) for f in shots]), atol=1e-5)


def test_goal_and_baseline_prompts_are_averaged_each_on_its_own(model):
    """VLM-RM does not pair the lists: two goals and one baseline is a reward like any other."""
    import torch

    reward = VLMReward(
        model, goal=["a robot kneeling", "a robot on its knees"], baseline=["a robot"], alpha=0.5
    )
    goal = model.encode_text(["a robot kneeling", "a robot on its knees"]).mean(0)
    baseline = model.encode_text(["a robot"]).mean(0)
    shots = frames(3, seed=2)
    expected = goal_baseline_reward(model.encode_images(shots), goal, baseline, 0.5)
    np.testing.assert_allclose(reward.score(shots), expected.numpy(), atol=1e-6)
    assert isinstance(reward.goal, torch.Tensor)


def test_frames_are_preprocessed_as_clips_own_processor_does():
    """Square and non-square frames (a 480x640 render, a portrait one), at a real CLIP's 224 px
    and a tiny model's 30: pixel for pixel within a few 8-bit levels of transformers'
    CLIPImageProcessor, on average well under one."""
    import torch
    from transformers import CLIPImageProcessor

    from rewardgen.vlm.models import CLIP_MEAN, CLIP_STD, _Preprocess

    std = np.array(CLIP_STD)[:, None, None]
    for size in (224, 30):
        theirs = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        ours = _Preprocess(size, size, CLIP_MEAN, CLIP_STD, "cpu", torch.float32)
        for h, w in ((480, 640), (640, 480), (300, 300), (500, 333)):
            yy, xx = np.mgrid[0:h, 0:w]
            frame = np.stack([127 + 120 * np.sin(xx / 17 + yy / 29), xx * 255 / w, yy * 255 / h], -1)
            frame[h // 3 : h // 2, w // 4 : w // 2] = (250, 20, 40)  # a sharp edge too
            frame = frame.round().astype(np.uint8)
            expected = theirs(images=frame, return_tensors="np")["pixel_values"][0]
            got = ours(frame[None])[0].numpy()
            assert got.shape == expected.shape
            levels = np.abs(got - expected) * std * 255  # in 8-bit pixel levels
            assert levels.mean() < 0.2 and levels.max() <= 8, (size, h, w, levels.mean(), levels.max())


def test_bad_input_is_named(model, tiny, tmp_path, monkeypatch):
    with pytest.raises(RewardgenError, match=r"alpha must be in \[0, 1\]"):
        VLMReward(model, goal=["a"], baseline=["b"], alpha=1.5)
    with pytest.raises(RewardgenError, match="give baseline prompts"):
        VLMReward(model, goal=["a"], alpha=0.5)
    with pytest.raises(RewardgenError, match="needs a goal"):
        VLMReward(model)
    from rewardgen.rewards import TransitionBatch

    no_frames = TransitionBatch(
        obs=np.zeros((1, 2)),
        action=np.zeros((1, 1)),
        next_obs=np.zeros((1, 2)),
        terminated=np.zeros(1, bool),
        truncated=np.zeros(1, bool),
    )
    with pytest.raises(RewardgenError, match="render_mode='rgb_array'"):
        VLMReward(model, goal=["a"])(no_frames)
    from gymnasium.wrappers import TimeLimit  # noqa: F401

    from rewardgen.tasks import make_env
    from rewardgen.wrappers import RewardWrapper

    with pytest.raises(RewardgenError, match="rgb_array"):
        RewardWrapper(make_env("halfcheetah-run"), VLMReward(model, goal=["a"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RewardgenError, match="hf download") as missing:
        load_model("no-such-org/no-such-clip")
    assert "pass DIR" in str(missing.value)
    with pytest.raises(RewardgenError, match="open_clip"):
        load_model("open_clip:ViT-B-32/laion2b_s34b_b79k")  # no open_clip here: the extra is named


def test_a_vlm_spec_pickles_and_renders_what_the_model_takes(tiny):
    from rewardgen.vlm.models import input_size

    spec = VLMSpec(tiny, goal=["a robot running"], baseline=["a robot"], alpha=0.5)
    spec = pickle.loads(pickle.dumps(spec))
    assert input_size(tiny) == 32  # read from the checkpoint's config, no weights loaded
    assert spec.render_kwargs() == {"width": 32, "height": 32}  # frame_size "auto"
    assert VLMSpec(tiny, goal=["a"], frame_size=None).render_kwargs() == {}
    with pytest.raises(RewardgenError, match="frame_size must be 'auto'"):
        VLMSpec(tiny, goal=["a"], frame_size=4)


def test_vlm_train_trains_an_agent_and_draws_the_reward_on_its_video(tiny, tmp_path):
    """The CLI end to end: the task's prompts, frames at the model's input size, PPO, evaluation
    on the task's own metric, the VLM reward curve beside the env's return, the annotated video."""
    import json

    import imageio.v3 as iio

    from rewardgen.cli import main

    run = tmp_path / "run"
    args = ["--model", tiny, "--steps", "128", "--n-envs", "1", "--eval-episodes", "1"]  # one episode done
    main(["vlm", "train", "--task", "humanoid-kneel", *args, "--hp", "n_steps=64", "--out", str(run)])
    manifest = json.loads((run / "manifest.json").read_text())
    reward = manifest["reward"]
    assert reward["kind"] == "vlm" and reward["goal"] == ["a humanoid robot kneeling"]
    assert reward["baseline"] == ["a humanoid robot"] and reward["alpha"] == 0.5  # the task's prompts
    assert reward["frame_size"] == 32 and manifest["deferred_reward"] is False
    ep = manifest["eval"]["episodes"][0]
    assert ep["length"] == 100 and set(ep["components"]) == {"vlm"}  # no early termination
    assert -1.0 <= ep["reward_return"] / ep["length"] <= 1.0  # a VLM reward per step lies in [-1, 1]
    assert "success_metric" in ep and (run / "learning_curve.png").stat().st_size > 10_000
    video = iio.imread(run / "video.mp4")
    assert video.shape[1:] == (448 + 72, 448, 3)  # 32 px frames enlarged 14x, the reward strip below
    strip = video[:, 448 + 30 :].astype(float)
    assert strip.std() > 5 and video.shape[0] == 100


def test_unknown_models_are_named_with_close_ones(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("open_clip")
    fake.list_models = lambda: ["ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    with pytest.raises(RewardgenError, match="unknown open_clip model 'ViT-B-33': did you mean ViT-B-32"):
        load_model("ViT-B-33/laion2b_s34b_b79k")


def test_vlm_score_prints_what_each_image_would_earn(tiny, tmp_path, capsys):
    import imageio.v3 as iio

    from rewardgen.cli import main

    paths = []
    for k, shot in enumerate(frames(2, seed=5, size=(48, 48))):
        paths.append(tmp_path / f"frame{k}.png")
        iio.imwrite(paths[-1], shot)
    main(["vlm", "score", "--model", tiny, "--prompt", "a robot kneeling", *map(str, paths)])
    out = capsys.readouterr().out
    expected = VLMReward(tiny, goal=["a robot kneeling"]).score(np.stack([iio.imread(p) for p in paths]))
    for path, value in zip(paths, expected, strict=True):
        assert path.name in out and f"{value:.4f}" in out
    with pytest.raises(SystemExit) as exc:
        main(["vlm", "score", "--model", tiny, "--prompt", "a", str(tmp_path / "none.png")])
    assert exc.value.code == 2
    # a grayscale picture is scored as the same picture in RGB
    gray = frames(1, seed=6, size=(48, 48))[0, ..., 0]
    iio.imwrite(tmp_path / "gray.png", gray)
    main(["vlm", "score", "--model", tiny, "--prompt", "a robot kneeling", str(tmp_path / "gray.png")])
    out = capsys.readouterr().out
    value = VLMReward(tiny, goal=["a robot kneeling"]).score(np.repeat(gray[None, ..., None], 3, axis=-1))[0]
    assert f"{value:.4f}" in out and "gray.png" in out
