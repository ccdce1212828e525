"""``rewardgen prefs serve``: the preference page of a run, and ``rewardgen prefppo``."""

from pathlib import Path
from typing import Annotated

import typer

from rewardgen.cli import app, console

prefs = typer.Typer(
    help="Preference rounds: the page where a person compares policies.", no_args_is_help=True
)
app.add_typer(prefs, name="prefs")


@prefs.command()
def serve(
    run_dir: Annotated[Path, typer.Argument(help="a run directory with preference rounds (ICPL, PrefPPO)")],
    host: Annotated[
        str, typer.Option(help="127.0.0.1: this machine only; any other host needs the printed token")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (the next free one of the ten after it if taken)")] = 8765,
) -> None:
    """Serve the page of RUN_DIR's open preference round until Ctrl-C: the answer goes to the
    run's preferences.jsonl, where the waiting search (``--judge web``) picks it up."""
    from rewardgen.feedback.web import PreferenceServer
    from rewardgen.runs import RunDir

    run = RunDir.open(run_dir)
    server = PreferenceServer(run.path, host=host, port=port)
    console.print(f"preference page of {run.path}: [bold]{server.url}[/bold] (Ctrl-C to stop)")
    if server.token:
        console.print("anyone with this URL (it holds the token) can answer: share it only with the judge")
    server.serve()
