"""asyncio over a shmring reader's fileno().

    async for record in shmring.aio.records(consumer):
        ...

records() takes a Consumer, a Subscriber or a QueueReader and yields
what its read() (pop() for a QueueReader) returns, bytes (or a struct
format's tuple), until end of stream. It waits with loop.add_reader() on
the reader's fileno(), so the loop serves everything else meanwhile; the
fd is level-triggered, so each wake-up drains with timeout=0 until
WouldBlockError. Every `check_every` seconds without a wake-up it tries
once more (a safety net: the reader's fd also wakes when its ring is
removed while no producer is attached, RemovedError). Errors are the reader's: PeerDeadError,
OverrunError (a lapped drop-slow Subscriber; the generator ends, call
records() again to go on), ... The reader must stay in this one task
meanwhile; it is not closed here.
"""
import asyncio
from typing import AsyncIterator, Callable, Optional, Union, overload

import shmring

__all__ = ["records"]


@overload
def records(
    reader: Union[shmring.Consumer, shmring.Subscriber],
    *,
    check_every: float = ...,
) -> AsyncIterator[bytes]: ...
@overload
def records(
    reader: shmring.QueueReader, *, check_every: float = ...
) -> AsyncIterator[object]: ...


async def records(
    reader: Union[shmring.Consumer, shmring.Subscriber, shmring.QueueReader],
    *,
    check_every: float = 0.25,
) -> AsyncIterator[object]:
    """The reader's records (elements) until end of stream."""
    if check_every <= 0:
        raise ValueError("check_every must be > 0")
    take: Callable[..., Optional[object]]
    if isinstance(reader, shmring.QueueReader):
        take = reader.pop
    else:
        take = reader.read
    loop = asyncio.get_running_loop()
    fd = reader.fileno()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            try:
                record = take(timeout=0)
            except shmring.WouldBlockError:
                # Nothing there: the fd is armed (level-triggered), and
                # becomes readable at the next record or end of stream.
                ready.clear()
                try:
                    await asyncio.wait_for(ready.wait(), check_every)
                except asyncio.TimeoutError:
                    pass
                continue
            if record is None:  # end of stream
                return
            yield record
    finally:
        loop.remove_reader(fd)
