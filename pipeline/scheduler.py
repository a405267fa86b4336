"""Where a run computes: Dask's threads on this machine, or an existing Dask cluster.

Without ``compute.scheduler`` (``--scheduler``) a run uses Dask's threaded scheduler
with one thread per core (``compute.workers`` / ``--workers`` to change). On the
2-core machines the project runs on, it was measured faster than worker processes
(a local cluster): the per-pixel work is numpy, which releases the GIL, and
processes pay for moving every tile between them (``docs``: performance.md).

``tcp://HOST:PORT`` connects to an existing ``distributed`` scheduler; its workers
must import this package and read the catalog's assets at the same paths. Results
are identical: every task is the same pure function of the same inputs.

``compute_units`` is the orchestrator's compute call: the units form one graph (a
pixel block that several units need is read once), and each unit's result is handed
to a callback as soon as it is ready, so it is saved before the rest finishes.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dask
import dask.threaded
from dask.callbacks import Callback
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from pipeline.config import ComputeConfig
from pipeline.errors import InputError, MineWatchError
from pipeline.logs import Progress

# Dask's threaded scheduler, passed as the function: named ("threads"), dask.compute
# first imports distributed to look for a default client (0.2 s and 10 MB a run need
# not pay; a local computation has none).
THREADS = dask.threaded.get

log = logging.getLogger(__name__)


@contextmanager
def connect(cfg: ComputeConfig) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cfg.scheduler`` (closed afterwards), or None for threads."""
    if not cfg.scheduler:
        yield None
        return
    if "://" not in cfg.scheduler:
        raise InputError(
            f"not a scheduler address: {cfg.scheduler!r} (expected tcp://HOST:PORT)",
            field="compute.scheduler",
        )
    from distributed import Client

    try:
        # Dask's connect timeout (``distributed.comm.timeouts.connect``, 30 s by default).
        client = Client(cfg.scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError) as exc:
        raise MineWatchError(f"cannot reach the Dask scheduler at {cfg.scheduler}: {exc}") from exc
    try:
        n = len(client.scheduler_info().get("workers", {}))
        log.info("computing on the Dask cluster at %s (%d workers)", cfg.scheduler, n)
        yield client
    finally:
        client.close()


def local_workers(cfg: ComputeConfig) -> int:
    """Threads of the local scheduler: ``compute.workers`` or one per core."""
    return cfg.workers or os.cpu_count() or 1


def release_free_memory() -> None:
    """Hand the memory the C allocator holds free back to the system (glibc only).

    glibc keeps what a thread's numpy arrays freed in that thread's arena rather than
    returning it, so after a computation the process holds about 100 MB it no longer
    uses (400 px scene), and the stages after it (the recovery model, the report) add
    to that. ``malloc_trim`` returns it; Dask's distributed workers do the same
    (Dask's documentation: "Memory not released back to the OS"). Elsewhere: nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


# The local threads' freed arrays are handed back every few saved units, not only after
# the computation: on the 400 px bench scene the peak RSS of a run fell 514-525 ->
# 480-490 MB, at the same time (three runs each).
TRIM_EVERY_UNITS = 4


def task_layer(
    name: str, tasks: Mapping[Any, Any], dependencies: Sequence[Any]
) -> Callable[[Any], Delayed]:
    """A graph layer ``name`` of plain tasks (``(function, *arguments)``, where an argument
    may be a key of the layer or of the ``dependencies``' graphs), and the function
    giving the lazy result of one of its keys.

    Written with ``dask.delayed``, each task of a long chain hashes its arguments and
    merges its inputs' graphs (1-4 ms a task, seconds on a city); as one layer the graph
    costs no more than its dict. The keys need not carry the layer's name.
    """
    graph = HighLevelGraph.from_collections(name, tasks, dependencies=list(dependencies))
    return lambda key: Delayed(key, graph, layer=name)


def _sink(result: Any) -> None:
    return None


def compute_units(
    units: Mapping[Hashable, Any],
    on_done: Callable[[Hashable, Any], None],
    *,
    client: Any,
    workers: int,
    progress: Progress,
) -> None:
    """Compute every delayed unit in one graph; call ``on_done(name, result)`` as each ends."""
    if not units:
        return
    if client is None:
        names = {unit.key: name for name, unit in units.items()}
        saved = 0

        def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            # Runs on the scheduling thread before the unit's dependents start.
            nonlocal saved
            name = names.get(key)
            if name is not None:
                on_done(name, result)
                progress.advance()
                saved += 1
                if saved % TRIM_EVERY_UNITS == 0:
                    release_free_memory()

        # Each unit feeds a sink that returns nothing, so Dask drops the unit's result
        # as soon as it is saved instead of holding every one until the end; fusing
        # would hide the units' keys from the callback.
        sinks = [dask.delayed(_sink, pure=True)(unit) for unit in units.values()]
        with Callback(posttask=posttask), dask.config.set({"optimization.fuse.delayed": False}):
            dask.compute(sinks, scheduler=THREADS, num_workers=workers)
        release_free_memory()
        return

    from distributed import as_completed

    futures = client.compute(list(units.values()))
    names = {fut.key: name for fut, name in zip(futures, units, strict=True)}
    try:
        for fut in as_completed(futures):
            on_done(names[fut.key], fut.result())
            progress.advance()
            fut.release()
    except BaseException:
        client.cancel(futures)
        raise
