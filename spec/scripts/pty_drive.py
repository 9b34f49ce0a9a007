#!/usr/bin/env python3
"""Drives a program through a pseudo-terminal, for the REPL specs.

Reads JSON from stdin: {"cmd": [...], "env": {...}, "steps": [{"send": "...",
"expect": "<regex>", "timeout": 10}, ...]}. Each step writes `send` (if any)
and waits until the output since the previous match contains `expect`.
Prints "OK" and exits 0, or "FAIL: <why>" plus the transcript and exits 1.
"""
import json, os, pty, re, select, sys, time

spec = json.load(sys.stdin)
env = dict(os.environ)
env.update(spec.get("env", {}))
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(spec["cmd"][0], spec["cmd"], env)

transcript = b""
pos = 0

def read_until(pattern, timeout):
    global transcript, pos
    deadline = time.time() + timeout
    rx = re.compile(pattern.encode(), re.S)
    while True:
        m = rx.search(transcript, pos)
        if m:
            pos = m.end()
            return True
        left = deadline - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return bool(rx.search(transcript, pos))
            if not chunk:
                return False
            transcript += chunk

ok = True
for i, step in enumerate(spec["steps"]):
    if "send" in step:
        os.write(fd, step["send"].encode())
    if "sleep" in step:
        time.sleep(step["sleep"])
    if "expect" in step and not read_until(step["expect"], step.get("timeout", 20)):
        print("FAIL: step %d: %r not seen" % (i + 1, step["expect"]))
        ok = False
        break

if ok:
    print("OK")
else:
    print("---- transcript ----")
    print(transcript.decode(errors="replace"))
try:
    os.kill(pid, 9)
except OSError:
    pass
sys.exit(0 if ok else 1)
