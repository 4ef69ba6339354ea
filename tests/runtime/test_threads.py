"""One Engine shared by 8 threads x 50 calls gives exactly the serial results (batch sizes alternate, so
the per-shape output buffers are switched while other threads wait)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from runtime import Engine
from tests.runtime.helpers import queries, support_args

THREADS, CALLS, DISTINCT = 8, 50, 12


def test_eight_threads_by_fifty_calls_equal_serial(micro):
    imgs, boxes = queries(seed=20, n=DISTINCT)
    jobs = [[((t * CALLS + i) % DISTINCT, 1 + (i % 2)) for i in range(CALLS)] for t in range(THREADS)]

    def call(engine, start, batch):
        idx = [(start + j) % DISTINCT for j in range(batch)]
        return engine.predict([imgs[j] for j in idx], boxes[idx])

    with Engine(micro.folder, threads=1) as engine:
        engine.set_support(**support_args(seed=21))
        serial = {(s, b): call(engine, s, b) for s in range(DISTINCT) for b in (1, 2)}

        def worker(t):
            return [(key, call(engine, *key)) for key in jobs[t]]

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(worker, range(THREADS)))
    assert sum(len(r) for r in results) == THREADS * CALLS
    for per_thread in results:
        for key, got in per_thread:
            np.testing.assert_array_equal(got, serial[key])
    # the outputs really differ between queries: the check above could not pass by accident
    assert not np.allclose(serial[(0, 1)], serial[(1, 1)])


def test_set_support_while_predicting_never_mixes_supports(micro):
    imgs, boxes = queries(seed=22, n=1)
    with Engine(micro.folder, threads=1) as engine:
        results = {}
        for seed in (23, 24):
            engine.set_support(**support_args(seed=seed))
            results[seed] = engine.predict(imgs, boxes)
        assert not np.allclose(results[23], results[24])

        def swapper():
            for i in range(20):
                engine.set_support(**support_args(seed=23 + i % 2))

        def predictor(_):
            return [engine.predict(imgs, boxes) for _ in range(20)]

        with ThreadPoolExecutor(4) as pool:
            swap = pool.submit(swapper)
            outs = [o for r in pool.map(predictor, range(3)) for o in r]
            swap.result()
    for out in outs:
        assert any(np.array_equal(out, ref) for ref in results.values())
