"""Dependent database tasks spread over a few connections, as ``pg_restore --jobs`` builds a
database: the staging schema's loads, keys and foreign keys.

On one connection the keys wait for every COPY and the FKs for every key. Here a task starts as
soon as the tasks it follows have committed, on whichever connection is free, so while the
largest table is still loading the others are loaded, keyed and checked beside it. Tasks that
lock a common table never run at the same time (an FK locks its parent too), so the
connections never wait on each other's locks and cannot deadlock.

Each task is one transaction. The first failure cancels the tasks still running and is raised
as it was (the staging schema is dropped by the caller, as after any failed build).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[psycopg.Cursor], object]
    locks: frozenset[str]  # tables it takes locks on
    after: frozenset[str] = field(default_factory=frozenset)  # names of tasks to wait for


def run_tasks(
    conns: list[psycopg.Connection],
    tasks: list[Task],
    begin: Callable[[psycopg.Cursor], None] = lambda _: None,
) -> dict[str, object]:
    """Run ``tasks`` (in list order of priority) over ``conns``; each task's result by name.

    ``begin`` runs at the start of each task's transaction (settings such as search_path).
    """
    names = {t.name for t in tasks}
    unknown = {a for t in tasks for a in t.after} - names
    if unknown:
        raise ValueError(f"tasks wait for tasks that do not exist: {sorted(unknown)}")
    state = threading.Condition()
    pending = list(tasks)
    done: set[str] = set()
    held: dict[int, frozenset[str]] = {}  # connection index -> locks of its running task
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def next_task() -> Task | None:
        """The first ready task (state's lock held), or None when there is nothing left."""
        while True:
            if errors or not pending:
                return None
            busy = frozenset().union(*held.values())
            for i, task in enumerate(pending):
                if task.after <= done and not task.locks & busy:
                    return pending.pop(i)
            if not held:  # nothing runs and nothing can start: the graph waits on itself
                raise RuntimeError(f"tasks cannot start: {[t.name for t in pending]}")
            state.wait()

    def worker(k: int, conn: psycopg.Connection) -> None:
        while True:
            with state:
                try:
                    task = next_task()
                except RuntimeError as error:
                    errors.append(error)
                    state.notify_all()
                    return
                if task is None:
                    return
                held[k] = task.locks
            try:
                with conn.cursor() as cur:
                    begin(cur)
                    result = task.run(cur)
                conn.commit()
            except BaseException as error:  # raised again in the caller's thread
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                with state:
                    if not errors:
                        errors.append(error)
                        for j, other in enumerate(conns):
                            if j != k and j in held:  # stop the others' long statements
                                with contextlib.suppress(psycopg.Error):
                                    other.cancel_safe()
                    held.pop(k, None)
                    state.notify_all()
                return
            with state:
                results[task.name] = result
                done.add(task.name)
                held.pop(k, None)
                state.notify_all()

    threads = [
        threading.Thread(target=worker, args=(k, c), name=f"prodtwin-task-{k}", daemon=True)
        for k, c in enumerate(conns[1:], start=1)
    ]
    for thread in threads:
        thread.start()
    worker(0, conns[0])  # the caller's connection works too
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
