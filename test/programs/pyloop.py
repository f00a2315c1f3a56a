"""A pure-Python loop with a background thread, for checkpoint/restart tests.

    python3 pyloop.py OUT ROUNDS

Deterministic output: a rolling hash over Python objects (dicts, lists, big ints, strings)
that live in the interpreter's heap, arenas and mmaps.
"""
import hashlib
import sys
import threading
import time

out = open(sys.argv[1], "w")
rounds = int(sys.argv[2])
h = hashlib.sha256()
table = {i: str(i * i) for i in range(50_000)}
big = 3 ** 20_000
lock = threading.Lock()
ticks = [0]


def background():
    # keeps a second interpreter thread alive (GIL handoffs across the checkpoint)
    for _ in range(rounds * 2):
        with lock:
            ticks[0] += 1
        time.sleep(0.004)


t = threading.Thread(target=background)
t.start()
for r in range(rounds):
    big = (big * 7 + r) % (10 ** 6000 + 7)
    table[r % 50_000] = table[(r * 31) % 50_000][::-1]
    h.update(f"{r}:{big % 1_000_003}:{table[r % 50_000]}".encode())
    out.write(f"round {r} {h.hexdigest()[:16]}\n")
    out.flush()
    time.sleep(0.01)
t.join()
out.write(f"final {h.hexdigest()} ticks {ticks[0]}\n")
out.close()
sys.exit(int(h.hexdigest()[:2], 16) % 50 + 10)
