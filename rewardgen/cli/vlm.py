"""``rewardgen vlm train`` (an agent on a VLM reward) and ``rewardgen vlm score`` (what a VLM
reward says of images, before any training)."""

from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console
from rewardgen.cli.common import EvalEpisodes, HpOverrides, _report, train_config

vlm = typer.Typer(
    help="VLM-RM: rewards from rendered frames scored by CLIP-like models.", no_args_is_help=True
)
app.add_typer(vlm, name="vlm")


ModelOption = Annotated[
    str,
    typer.Option(
        help="hub name or local folder (transformers CLIP/SigLIP), or open_clip:MODEL/PRETRAINED "
        "(or MODEL/PATH to a checkpoint file)"
    ),
]
DEFAULT_MODEL = "openai/clip-vit-base-patch32"


@vlm.command("train")
def train_cmd(
    task: Annotated[str, typer.Option(help="task id (see `rewardgen tasks`) or a task YAML file")],
    prompt: Annotated[
        list[str] | None, typer.Option(help="a goal prompt; repeat for more; default: the task's")
    ] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(help="a baseline prompt, as many as goal prompts; default: the task's"),
    ] = None,
    goal_image: Annotated[
        list[Path] | None, typer.Option(help="a picture of the goal; repeat for more")
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(help="0: cosine similarity to the goal; 1: only goal - baseline; default: the task's"),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    frame_size: Annotated[
        int | None, typer.Option(help="square frames rendered for the model; default: its input size")
    ] = None,
    steps: Annotated[str | None, typer.Option(help="training steps; default: the task's budget")] = None,
    algo: Annotated[str | None, typer.Option(help="ppo or sac; default: the task's")] = None,
    n_envs: Annotated[int | None, typer.Option(help="parallel envs (each renders every step)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda")] = "auto",
    eval_episodes: EvalEpisodes = 3,
    video: Annotated[bool, typer.Option(help="record the final policy with its reward drawn")] = True,
    hp: HpOverrides = None,
    out: Annotated[Path | None, typer.Option(help="run directory; default runs/<utc>-<task>-vlm")] = None,
) -> None:
    """Train an agent on a zero-shot VLM reward (VLM-RM): each rendered frame scored against
    the goal prompt, no reward code at all; evaluated on the task's own success metric."""
    from rewardgen.errors import RewardgenError
    from rewardgen.tasks import get_task
    from rewardgen.training import train as run_train
    from rewardgen.vlm import VLMSpec

    spec = get_task(task)
    defaults = spec.vlm
    goal = prompt or (defaults.goal if defaults and not goal_image else [])
    if not goal and not goal_image:
        raise RewardgenError(
            f"task {spec.id} has no VLM prompts: say what the goal looks like with --prompt "
            '"a humanoid robot kneeling" (and --baseline "a humanoid robot"), or --goal-image'
        )
    if baseline is None and defaults and goal == defaults.goal:
        baseline = defaults.baseline
    if alpha is None:
        alpha = defaults.alpha if defaults and baseline else 0.0
    missing = [str(p) for p in goal_image or [] if not p.is_file()]
    if missing:
        raise RewardgenError(f"no goal image at {', '.join(missing)}")
    reward = VLMSpec(
        model,
        goal,
        baseline or [],
        alpha,
        [str(p) for p in goal_image or []],
        device=device,
        frame_size=frame_size or "auto",
    )
    console.print(
        f"VLM reward: {model}, goal {goal}"
        + (f" and images {reward.goal_images}" if reward.goal_images else "")
        + f", baseline {baseline or []}, alpha {alpha:g}, "
        f"frames {reward.render_kwargs().get('width', 'as rendered')} px",
        highlight=False,
        soft_wrap=True,
    )
    config = train_config(
        task=task,
        reward=reward,
        steps=steps,
        algo=algo,
        n_envs=n_envs,
        seed=seed,
        device=device,
        video=video,
        eval_episodes=eval_episodes,
        hp=hp,
    )
    _report(run_train(config, out=out, method="vlm"))


@vlm.command()
def score(
    images: Annotated[list[Path], typer.Argument(help="image files (PNG, JPEG) to score")],
    model: ModelOption = DEFAULT_MODEL,
    prompt: Annotated[list[str] | None, typer.Option(help="a goal prompt; repeat for more")] = None,
    baseline: Annotated[
        list[str] | None, typer.Option(help="a baseline prompt; as many as goal prompts")
    ] = None,
    goal_image: Annotated[
        list[Path] | None, typer.Option(help="a picture of the goal; repeat for more")
    ] = None,
    alpha: Annotated[
        float,
        typer.Option(
            help="0: 1 - |x - g|^2 / 2 (the cosine similarity to the goal for one prompt); "
            "1: only the goal - baseline direction"
        ),
    ] = 0.0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda")] = "auto",
) -> None:
    """Score IMAGES with the VLM reward of the goal prompts (or goal images) against the
    baselines: the number each frame would earn as a reward, to check prompts before training."""
    import imageio.v3 as iio

    from rewardgen.errors import RewardgenError
    from rewardgen.vlm import VLMReward
    from rewardgen.vlm.reward import as_rgb

    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise RewardgenError(f"no image at {', '.join(missing)}")
    reward = VLMReward(
        model, prompt or [], baseline or [], alpha, [str(p) for p in goal_image or []], device=device
    )
    console.print(f"VLM reward ({model}, alpha {alpha:g}) of each image:", highlight=False)
    for path in images:
        frame = as_rgb(iio.imread(path), str(path))
        line = f"  {reward.score(frame[None])[0]:8.4f}  {path}"
        console.print(line, soft_wrap=True, highlight=False, markup=False)
