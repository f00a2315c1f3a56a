#!/usr/bin/env python3
"""fake_agent.py — DEV TOOL ONLY: a stand-in for the TypeScript agent, to exercise libmana and
mana_restore by hand. Not used by the product's tests.

  fake_agent.py SOCK [--resume-first] [--ckpt PATH:DELAY:ACTION ...] [--compress N]

Accepts one process on the unix socket SOCK, prints its HELLO; with --resume-first sends
RESUME right away (a restarted process waits for it). Each --ckpt waits DELAY seconds, then
SUSPEND, WRITE PATH, and ACTION: 'resume' (RESUME) or 'kill' (SIGKILL the process, exit).
"""
import os, signal, socket, struct, sys, time

MAGIC = 0x414E414D
NAMES = {1: "HELLO", 2: "SUSPEND", 3: "SUSPENDED", 4: "WRITE", 5: "PROGRESS", 6: "WRITTEN",
         7: "RESUME", 8: "RESUMED"}


def send(c, t, payload=""):
    b = payload.encode()
    c.sendall(struct.pack("<IHHII", MAGIC, 1, t, len(b), 0) + b)


def recv(c):
    h = b""
    while len(h) < 16:
        x = c.recv(16 - len(h))
        if not x:
            return None, None
        h += x
    magic, ver, t, n, _ = struct.unpack("<IHHII", h)
    assert magic == MAGIC, hex(magic)
    p = b""
    while len(p) < n:
        x = c.recv(n - len(p))
        if not x:
            return None, None
        p += x
    kv = dict(l.split("=", 1) for l in p.decode().splitlines() if "=" in l)
    return t, kv


def expect(c, want):
    while True:
        t, kv = recv(c)
        if t is None:
            log("process closed the connection")
            sys.exit(3)
        log("<- %s %s" % (NAMES.get(t, t), kv))
        if t == want:
            return kv


def log(m):
    print("fake_agent: " + m, file=sys.stderr, flush=True)


def main():
    a = sys.argv[1:]
    sock = a.pop(0)
    resume_first = False
    ckpts = []
    compress = 0
    while a:
        o = a.pop(0)
        if o == "--resume-first":
            resume_first = True
        elif o == "--ckpt":
            path, delay, action = a.pop(0).rsplit(":", 2)
            ckpts.append((path, float(delay), action))
        elif o == "--compress":
            compress = int(a.pop(0))
    if os.path.exists(sock):
        os.unlink(sock)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    os.chmod(sock, 0o777)
    s.listen(1)
    c, _ = s.accept()
    hello = expect(c, 1)
    pid = int(hello["pid"])
    if resume_first:
        send(c, 7)
        expect(c, 8)
    for path, delay, action in ckpts:
        time.sleep(delay)
        t0 = time.time()
        send(c, 2, "generation=1\n")
        kv = expect(c, 3)
        if "error" in kv:
            log("SUSPEND failed: " + kv["error"])
            send(c, 7)
            expect(c, 8)
            continue
        send(c, 4, "generation=1\npath=%s\ncompress=%d\n" % (path, compress))
        kv = expect(c, 6)
        log("checkpoint took %.3f s" % (time.time() - t0))
        if action == "kill":
            os.kill(pid, signal.SIGKILL)
            log("killed %d" % pid)
            return
        send(c, 7)
        expect(c, 8)
    while recv(c)[0] is not None:
        pass
    log("process went away")


main()
