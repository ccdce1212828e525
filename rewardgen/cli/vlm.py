"""``rewardgen vlm score``: what a VLM reward says of images, before any training."""

from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console

vlm = typer.Typer(
    help="VLM-RM: rewards from rendered frames scored by CLIP-like models.", no_args_is_help=True
)
app.add_typer(vlm, name="vlm")


@vlm.command()
def score(
    images: Annotated[list[Path], typer.Argument(help="image files (PNG, JPEG) to score")],
    model: Annotated[
        str,
        typer.Option(help="hub name or local folder (transformers), or open_clip:MODEL/PRETRAINED"),
    ] = "openai/clip-vit-base-patch32",
    prompt: Annotated[list[str] | None, typer.Option(help="a goal prompt; repeat for more")] = None,
    baseline: Annotated[
        list[str] | None, typer.Option(help="a baseline prompt; as many as goal prompts")
    ] = None,
    goal_image: Annotated[
        list[Path] | None, typer.Option(help="a picture of the goal; repeat for more")
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="0: cosine similarity to the goal; 1: only goal - baseline")
    ] = 0.0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda")] = "auto",
) -> None:
    """Score IMAGES with the VLM reward of the goal prompts (or goal images) against the
    baselines: the number each frame would earn as a reward, to check prompts before training."""
    import imageio.v3 as iio
    import numpy as np

    from rewardgen.errors import RewardgenError
    from rewardgen.vlm import VLMReward

    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise RewardgenError(f"no image at {', '.join(missing)}")
    reward = VLMReward(
        model, prompt or [], baseline or [], alpha, [str(p) for p in goal_image or []], device=device
    )
    console.print(f"VLM reward ({model}, alpha {alpha:g}) of each image:", highlight=False)
    for path in images:
        frame = np.asarray(iio.imread(path))[..., :3]
        line = f"  {reward.score(frame[None])[0]:8.4f}  {path}"
        console.print(line, soft_wrap=True, highlight=False, markup=False)
