"""Where candidates train: inline, in a pool of worker processes sharing the machine, or as Ray
tasks on a cluster (``--executor ray --ray-address ...``).

A job may name the folders it works in (``map(fn, jobs, folders=...)``: a candidate's folder).
On a Ray node that sees the driver's disk the job works there; on one that does not (KubeRay,
cloud autoscaling: nodes share no file system) the folders travel with the job, through Ray's
object store, and come back with its result, so the driver's run directory ends complete.
A job may also name signal files (``signals=...``: the search's stop file) that either side may
write: where the disk is not shared, a small Ray actor carries them across within a second, so a
search's time budget stops candidates on every node and a candidate's success stops its siblings.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import tarfile
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from rewardgen.errors import RewardgenError, require

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "pack_folder",
    "unpack_folder",
]

Folders = Sequence[Sequence[Path]] | None  # per job, the folders it reads and writes (or its signal files)

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs ``fn(*args)`` for each job; results in job order. A job's exception is returned
    (not raised), so one broken candidate never stops the others."""

    def map(
        self, fn: Callable[..., Any], jobs: Sequence[tuple], folders: Folders = None, signals: Folders = None
    ) -> list[Any]: ...

    def close(self) -> None: ...


TOKEN = (
    ".rewardgen-driver"  # in a shipped folder: which driver wrote it (a node that sees it shares the disk)
)


def pack_folder(folder: Path) -> bytes | None:
    """``folder``'s files as a gzipped tar (None: no such folder).

    Example:
        >>> import tempfile
        >>> a, b = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "copy"
        >>> _ = (a / "x.txt").write_text("hi")
        >>> unpack_folder(pack_folder(a), b); (b / "x.txt").read_text()
        'hi'
    """
    if not folder.is_dir():
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        # never the driver's token: a node holding a copy must not take it for the driver's disk
        tar.add(folder, arcname=".", filter=lambda t: None if Path(t.name).name == TOKEN else t)
    return buf.getvalue()


def unpack_folder(data: bytes | None, folder: Path) -> None:
    """Write :func:`pack_folder`'s files into ``folder`` (made if missing; files in the archive
    replace those there; nothing outside ``folder`` is written)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not data:
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # Python < 3.11.4: refuse anything that would land outside the folder
            root = folder.resolve()
            for member in tar.getmembers():
                if (
                    not (folder / member.name).resolve().is_relative_to(root)
                    or member.issym()
                    or member.islnk()
                ):
                    raise RewardgenError(f"refusing to unpack {member.name!r} outside {folder}")
            tar.extractall(folder)


class _SignalBoard:
    """A Ray actor: the texts of signal files by path, the first writer's kept; where the driver
    and the nodes share no disk, they meet here."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def post(self, texts: dict[str, str]) -> None:
        for path, text in texts.items():
            self.texts.setdefault(path, text)

    def read(self, paths: Sequence[str]) -> dict[str, str]:
        return {p: self.texts[p] for p in paths if p in self.texts}


class _Mirror:
    """Keeps signal files and the board in step from a thread, every ``every_s``: a file that
    appears here is posted, a text posted elsewhere is written here. On a node, a file left by
    another executor's job (its ``.owner`` names another token) is stale and removed first."""

    def __init__(
        self, ray: Any, board: Any, paths: Sequence[Path], token: str, node: bool, every_s: float = 0.5
    ):
        self.ray, self.board, self.token = ray, board, token
        self.paths = sorted({str(p) for p in paths})
        if node:
            for p in self.paths:
                owner = Path(p + ".owner")
                if owner.is_file() and owner.read_text() != token:
                    Path(p).unlink(missing_ok=True)
                    owner.unlink(missing_ok=True)
        self._stop = threading.Event()
        self._node = node
        self._thread = threading.Thread(target=self._run, name="rewardgen-signals", daemon=True)
        self._thread.start()

    def sync(self) -> None:
        known = self.ray.get(self.board.read.remote(self.paths))
        fresh = {p: Path(p).read_text() for p in self.paths if p not in known and Path(p).is_file()}
        if fresh:
            self.ray.get(self.board.post.remote(fresh))
        for p, text in known.items():
            if not Path(p).exists():
                Path(p).parent.mkdir(parents=True, exist_ok=True)
                Path(p).write_text(text)
        if self._node:
            for p in [*fresh, *known]:
                Path(p + ".owner").write_text(self.token)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.sync()
            except Exception:  # a board call that failed: the next one tries again
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.sync()  # what the job wrote last
        except Exception:
            pass


def _in_folders(
    threads: int,
    folders: Sequence[Path],
    packs: Sequence[bytes | None],
    token: str,
    board: Any,
    signals: Sequence[Path],
    fn: Callable[..., Any],
    *args: Any,
) -> tuple[Any, list[bytes | None] | None]:
    """A Ray task: ``fn(*args)`` in its folders. Where this node sees the driver's copies (the
    driver's token is there, which is never shipped) it works on them; else it unpacks the
    shipped copies, mirrors its signal files through ``board`` while it works, and sends the
    folders back with the result. An exception is returned (with the folders), not raised."""
    shared = all((Path(f) / TOKEN).is_file() and (Path(f) / TOKEN).read_text() == token for f in folders)
    mirror = None
    if not shared:
        for f, data in zip(folders, packs, strict=True):
            unpack_folder(data, Path(f))
        if signals:
            import ray

            mirror = _Mirror(ray, board, signals, token, node=True)
    _init_worker(threads)
    try:
        result = fn(*args)
    except Exception as exc:
        result = exc
    finally:
        if mirror is not None:
            mirror.close()
    return result, None if shared else [pack_folder(Path(f)) for f in folders]


def _init_worker(threads: int) -> None:
    # Several trainers on one machine: oversubscribed torch threads slow every one of them down.
    # OMP_NUM_THREADS too: training sets its threads from it (rewardgen.training.threads) rather
    # than from a look at the cores, which the other candidates are about to take.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _init_pool_worker(threads: int, driver: int) -> None:
    from rewardgen.runs.processes import become_worker

    become_worker(driver)
    _init_worker(threads)


class LocalExecutor:
    """A process pool (spawned workers, so the parent's threads are never forked) or, with one
    worker, plain calls in this process.

    A ``KeyboardInterrupt`` while it waits (Ctrl-C, or a signal the CLI turns into one) stops
    every worker: each saves what its job trained and marks its run interrupted, then the
    interrupt goes on. Workers whose driver dies stop by themselves
    (:mod:`rewardgen.runs.processes`).

    Example:
        >>> LocalExecutor(workers=1).map(pow, [(2, 3), (3, 2)])
        [8, 9]
    """

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_pool_worker,
                initargs=(threads, os.getpid()),
            )
        return self._pool

    def map(
        self, fn: Callable[..., Any], jobs: Sequence[tuple], folders: Folders = None, signals: Folders = None
    ) -> list[Any]:
        # one machine: folders and signal files are where every job sees them
        if self.workers == 1 or len(jobs) <= 1:
            out = []
            for job in jobs:
                try:
                    out.append(fn(*job))
                except Exception as exc:
                    out.append(exc)
            return out
        from rewardgen.runs.processes import run_job

        pool = self._get_pool()
        futures = [pool.submit(run_job, fn, *job) for job in jobs]
        results: list[Any] = []
        try:
            for fut in futures:
                try:
                    results.append(fut.result())
                except Exception as exc:
                    results.append(exc)
        except BaseException:  # told to stop: so are the workers, and the pool goes
            self.stop()
            raise
        if any(isinstance(r, BrokenProcessPool) for r in results):
            self.close()  # the next map starts a fresh pool
        return results

    def stop(self) -> None:
        """Stop every worker now (each saves its job's model and marks its run interrupted,
        within :data:`~rewardgen.runs.processes.GRACE_S`) and end the pool."""
        from rewardgen.runs.processes import stop_processes

        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        stop_processes(processes)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    _init_worker(threads)
    return fn(*args)


class RayExecutor:
    """Each job a Ray task with its own CPU (and GPU) request, on a running cluster
    (``address="ray://head:10001"`` or ``"auto"``) or on a Ray instance started here (``None``).

    Every node needs rewardgen installed; the run directory need not be shared: jobs that name
    their folders carry them to a node that does not see them and bring them back. A task's
    exception comes back as that exception; a lost worker fails only its job.

    Example:
        >>> ex = RayExecutor(cpus_per_job=1, num_cpus=2)  # doctest: +SKIP
        >>> ex.map(pow, [(2, 3), (3, 2)])  # doctest: +SKIP
        [8, 9]
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_job: float = 1,
        gpus_per_job: float = 0,
        num_cpus: int | None = None,
    ):
        self.ray = require("ray", "ray", "the Ray executor")
        if cpus_per_job <= 0 or gpus_per_job < 0:
            raise RewardgenError(
                f"a Ray job needs cpus > 0 and gpus >= 0, got cpus={cpus_per_job}, gpus={gpus_per_job}"
            )
        self.cpus, self.gpus = cpus_per_job, gpus_per_job
        self._own = not self.ray.is_initialized()
        if self._own:
            env = {k: os.environ[k] for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM") if k in os.environ}
            try:
                self.ray.init(
                    address=address,
                    num_cpus=num_cpus if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": env} if env else None,
                )
            except ConnectionError as exc:
                raise RewardgenError(
                    f"cannot reach the Ray cluster at --ray-address {address}: {exc} "
                    "(start it with `ray start --head`, or leave --ray-address out for a local one)"
                ) from exc
        options = {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": 0}
        self._remote = self.ray.remote(_with_threads).options(**options)
        self._shipped = self.ray.remote(_in_folders).options(**options)
        self.token = uuid.uuid4().hex
        self._board: Any = None

    def map(
        self, fn: Callable[..., Any], jobs: Sequence[tuple], folders: Folders = None, signals: Folders = None
    ) -> list[Any]:
        threads = max(1, int(self.cpus))
        mirror = None
        if folders is None:
            refs = [self._remote.remote(threads, fn, *job) for job in jobs]
        else:
            if signals is not None and self._board is None:
                self._board = self.ray.remote(_SignalBoard).options(num_cpus=0).remote()
            if signals is not None:  # the driver's side of the signal files
                mirror = _Mirror(
                    self.ray, self._board, [p for job in signals for p in job], self.token, node=False
                )
            refs = []
            for k, (job, where) in enumerate(zip(jobs, folders, strict=True)):
                for f in where:  # marks the driver's copy: a node that sees it works in place
                    Path(f).mkdir(parents=True, exist_ok=True)
                    (Path(f) / TOKEN).write_text(self.token)
                packs = [pack_folder(Path(f)) for f in where]
                sig = [Path(p) for p in signals[k]] if signals is not None else []
                refs.append(
                    self._shipped.remote(
                        threads, [Path(f) for f in where], packs, self.token, self._board, sig, fn, *job
                    )
                )
        try:
            return self._gather(refs, folders)
        except BaseException:  # told to stop: each task gets a KeyboardInterrupt, then is ended
            self._cancel(refs)
            raise
        finally:
            if mirror is not None:
                mirror.close()

    def _cancel(self, refs: list[Any]) -> None:
        from rewardgen.runs.processes import GRACE_S

        for ref in refs:
            self.ray.cancel(ref, force=False)  # a KeyboardInterrupt in the task: it saves and ends
        _, pending = self.ray.wait(refs, num_returns=len(refs), timeout=GRACE_S)
        for ref in pending:
            self.ray.cancel(ref, force=True)

    def _gather(self, refs: list[Any], folders: Folders) -> list[Any]:
        results: list[Any] = []
        for k, ref in enumerate(refs):
            try:
                out = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as exc:
                results.append(exc.as_instanceof_cause())
                continue
            except Exception as exc:  # a worker died, the node was lost, ...
                results.append(exc)
                continue
            if folders is not None:
                out, packs = out
                for f, data in zip(folders[k], packs or [], strict=False):
                    unpack_folder(data, Path(f))  # the node's work, back in the driver's run directory
            results.append(out)
        return results

    def close(self) -> None:
        if self._own and self.ray.is_initialized():
            self.ray.shutdown()


def make_executor(
    kind: str, workers: int = 1, address: str | None = None, gpus_per_job: float = 0
) -> Executor:
    """The executor named on the command line: ``local`` (``workers`` processes) or ``ray``."""
    if kind == "local":
        if address:
            raise RewardgenError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if kind == "ray":
        cpus = max(1, (os.cpu_count() or 1) // max(1, workers)) if address is None else 1
        return RayExecutor(address, cpus_per_job=cpus, gpus_per_job=gpus_per_job, num_cpus=os.cpu_count())
    raise RewardgenError(f"unknown executor '{kind}': choose one of {', '.join(EXECUTORS)}")
