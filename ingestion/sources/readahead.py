"""Produce a generator's items on a worker thread, a few ahead of the consumer.

pyarrow parses and computes without holding the GIL, and a socket read waits
without it, so reading the next batch (an export's, or an API page) on a worker
overlaps with shaping and writing the previous one on the main thread: on two
cores a load keeps both busy.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
THREAD_NAME = "civic311-read-ahead"


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """`items`, produced on a worker thread up to `depth` ahead of the consumer.
    Errors surface in the consumer; closing the generator stops the worker."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            slots.put((done, exc))

    worker = threading.Thread(target=produce, name=THREAD_NAME, daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)
