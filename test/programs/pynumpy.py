"""numpy arrays across a checkpoint: python3 pynumpy.py OUT ROUNDS"""
import sys
import time

import numpy as np

out = open(sys.argv[1], "w")
rounds = int(sys.argv[2])
rng = np.random.default_rng(12345)
a = rng.standard_normal((512, 512))
v = np.ones(512)
for r in range(rounds):
    v = a @ v
    v /= np.linalg.norm(v)
    a[r % 512, :] += v * 1e-3
    out.write(f"round {r} {v[:4].tobytes().hex()} {a.sum():.17g}\n")
    out.flush()
    time.sleep(0.01)
out.close()
sys.exit(int(abs(a.sum() * 1000)) % 50 + 10)
