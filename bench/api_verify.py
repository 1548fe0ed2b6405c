"""Benchmark: POST /v1/verify, 4 concurrent clients, vs verify_otp in-process (SPEC §6).

Target: >= 1,000 verifications/s through `eset2fa serve` on SQLite (privacyIDEA's /validate/check:
5.6/s on the same machine). The server runs as `eset2fa serve` would (a separate process, its
request log written to a file); 4 client processes each keep one `requests.Session` alive and send
`{"user", "code"}` with a Bearer key for users in turn. The baseline, measured in the same run,
alternating with the HTTP rounds, is `verify_otp` called in this process on the same store: the
ratio is what HTTP, JSON, the key check, the rate limits and the thread hop add per verification.

Each verification is the real, durable path (synchronous=FULL): a wrong code ("000000") for one of
100 enrolled users, counted and audited; the lockout limit and the server's rate limits are
raised so that nothing locks or throttles. Also printed: the time from starting `eset2fa serve` to
its first /healthz answer.

    python bench/api_verify.py [--ops 2000] [--rounds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USERS = 100


def setup(path: Path) -> str:
    from eset2fa.accounts import api_keys
    from eset2fa.accounts.actors import local_operator
    from eset2fa.api import open_store
    from eset2fa.db import users as user_rows
    from eset2fa.ops import settings
    from eset2fa.twofactor import enrollment

    store = open_store(path, create=True)
    actor = local_operator()
    with store.write() as conn:
        for i in range(USERS):
            user_rows.insert(conn, f"user{i}", None, None, "2026-01-01T00:00:00Z")
    enrollment.enable(store, actor, all_users=True)
    for key, value in (
        ("lockout.max_failures", "1000000000"),
        ("server.key_rate_limit", "1000000000"),
        ("server.user_rate_limit", "1000000000"),
    ):
        settings.set_value(store, actor, key, value)
    key = api_keys.create(store, actor, "bench")["key"]
    store.close()
    return key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(path: Path, port: int, log: Path, extra: list[str]):
    import requests

    started = time.perf_counter()
    with open(log, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eset2fa", "--db", str(path), "serve", "--port", str(port)]
            + extra,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    session = requests.Session()
    session.trust_env = False
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {log.read_text()}")
        try:
            if session.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except requests.ConnectionError:
            time.sleep(0.005)


def client(url: str, key: str, ops: int, offset: int, start, results) -> None:
    import requests

    session = requests.Session()
    session.trust_env = False
    headers = {"Authorization": f"Bearer {key}"}
    session.post(url, json={"user": "user0", "code": "000000"}, headers=headers)  # connect
    start.wait()
    cpu = time.process_time()
    began = time.perf_counter()
    for i in range(ops):
        answer = session.post(
            url, json={"user": f"user{(offset + i) % USERS}", "code": "000000"}, headers=headers
        )
        if answer.status_code != 403:
            raise SystemExit(f"unexpected answer {answer.status_code}: {answer.text}")
    results.put((began, time.perf_counter(), time.process_time() - cpu))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_round(url: str, key: str, ops: int, clients: int) -> tuple[float, float]:
    """(wall time from the first client's start to the last one's end, the clients' CPU time)
    for `ops` verifications in all."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=client, args=(url, key, ops // clients, n * 25, start, results))
        for n in range(clients)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.3)  # every client connected and waiting
    start.set()
    spans = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    wall = max(span[1] for span in spans) - min(span[0] for span in spans)
    return wall, sum(span[2] for span in spans)


def inprocess_round(path: Path, ops: int) -> tuple[float, float]:
    from eset2fa.api import open_store
    from eset2fa.twofactor.totp import verify_otp

    store = open_store(path)
    names = [f"user{i}" for i in range(USERS)]
    verify_otp(store, names[0], "000000")  # the key is loaded once per store
    cpu = time.process_time()
    began = time.perf_counter()
    for i in range(ops):
        verify_otp(store, names[i % USERS], "000000")
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    store.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000, help="verifications per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--serve-args", default="", help="extra `eset2fa serve` arguments")
    args = parser.parse_args()
    os.environ["ESET2FA_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    proc = None
    try:
        path = work / "api.db"
        key = setup(path)
        port = free_port()
        proc, startup = start_server(path, port, work / "serve.log", args.serve_args.split())
        url = f"http://127.0.0.1:{port}/v1/verify"
        http_round(url, key, 400, args.clients)  # warm-up: every worker thread opens its store
        over_http, in_process, server_cpu, client_cpu, local_cpu = [], [], [], [], []
        for _ in range(args.rounds):
            before = cpu_seconds(proc.pid)
            wall, clients_cpu = http_round(url, key, args.ops, args.clients)
            server_cpu.append((cpu_seconds(proc.pid) - before) / args.ops)
            client_cpu.append(clients_cpu / args.ops)
            over_http.append(wall)
            elapsed, cpu = inprocess_round(path, args.ops)
            in_process.append(elapsed)
            local_cpu.append(cpu / args.ops)
        http_s, local_s = statistics.median(over_http), statistics.median(in_process)
        print(f"ops per round: {args.ops}, rounds: {args.rounds}, clients: {args.clients}, "
              f"SQLite WAL synchronous=FULL, serve {args.serve_args or '(defaults)'}")  # fmt: skip
        print(f"serve start to first /healthz: {startup * 1000:6.0f} ms")
        print(f"POST /v1/verify:               {args.ops / http_s:6.0f} verifications/s")
        print(f"verify_otp in-process:         {args.ops / local_s:6.0f} verifications/s")
        print(f"ratio (HTTP rate / in-process): {local_s / http_s:.2f}")
        print(f"CPU per verification: server {statistics.median(server_cpu) * 1000:.2f} ms, "
              f"clients {statistics.median(client_cpu) * 1000:.2f} ms, "
              f"in-process {statistics.median(local_cpu) * 1000:.2f} ms; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
