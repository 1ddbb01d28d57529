"""`searchlab.predict(DIR, top=K)`: a first call (the network's pass over the whole table, scores written to
an empty cache folder), a second call (scores read back), and the ranking step alone on the cached scores:
a full stable argsort (the earlier ranking) against the partial selection `top_rows`.

    python bench/predict_top.py PREDICTOR_DIR [--top 3]

Train a predictor first, e.g. `searchlab predictor train --kind renas --labels 100 --out preds/renas`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("predictor")
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args()
    cache = tempfile.mkdtemp()
    os.environ["SEARCHLAB_CACHE_DIR"] = cache
    import numpy as np

    import searchlab
    from searchlab.predictors.commands import top_rows

    print("load average", os.getloadavg())
    first, wall, cpu = timed(lambda: searchlab.predict(args.predictor, top=args.top))
    print(f"first call   {wall:8.2f} s wall {cpu:8.2f} s CPU")
    again, wall, cpu = timed(lambda: searchlab.predict(args.predictor, top=args.top))
    print(f"second call  {wall:8.2f} s wall {cpu:8.2f} s CPU  same: {again == first}")
    scores = np.load(next(Path(cache).rglob("*.npy")))
    for k in sorted({args.top, 100, 10000}):
        full, wall_full, _ = timed(lambda: np.argsort(-scores.astype(np.float64), kind="stable")[:k])
        part, wall_part, _ = timed(lambda: top_rows(scores, k))
        print(f"K={k:<6} argsort {1000 * wall_full:7.1f} ms  top_rows {1000 * wall_part:6.1f} ms  "
              f"same: {np.array_equal(full, part)}")
    print("load average", os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
