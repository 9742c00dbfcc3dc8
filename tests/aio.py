"""Run a coroutine to its end from a test, whatever loop the thread has.

``asyncio.run`` refuses to start while the calling thread already runs a loop
(an earlier test's kernel or tornado code may leave one set): each coroutine
gets a fresh loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
