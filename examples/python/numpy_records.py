"""numpy arrays straight in and out of the ring: the producer fills a
reservation through np.frombuffer, the consumer views the record the same
way. Neither side copies the payload."""
import os

import numpy as np

import shmring

key = 0x5EED0000 | (os.getpid() & 0xFFFF)
with shmring.open(key, create=True, capacity=1 << 20) as ring:
    with ring.producer() as producer, ring.consumer() as consumer:
        buf = producer.reserve(1000 * 8)
        out = np.frombuffer(buf, dtype=np.float64)  # writes go to the ring
        out[:] = np.linspace(0.0, 1.0, 1000)
        del out  # no view may outlive the reservation
        producer.commit()

        record = next(iter(consumer))
        samples = np.frombuffer(record, dtype=np.float64)  # no copy
        print(f"{samples.size} samples, mean {samples.mean():.3f}, "
              f"read-only: {not samples.flags.writeable}")
        del samples  # release before the next record
    ring.remove()
