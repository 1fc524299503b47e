#!/usr/bin/env python3
"""Benchmarks of the release build of `account-worker run`, in one run.

Each scenario gets a fresh local stack: `account-worker dev-kafka` (librdkafka's
mock cluster, 6 partitions) and `account-worker simulate-useapi` with a fixed
latency. Commands are produced and results read with kcat. Printed figures:

  throughput  commands/s at (C=64, L=200 ms) and (C=64, L=50 ms) against
              Little's law (C/L); peak RSS and threads of the L=50 worker
  idle        RSS and threads of a worker that joined its group, no commands
  cpu         CPU time per command at L=0 (the idle worker, then N commands)
  overhead    durationMs - L at half of C/L offered load; end to end too
  scaleout    3 replicas against 1 at an I/O-bound load

The figures are reported, never judged: the exit status is non-zero only when
something is broken (a result missing or not ok, a process that died, a wait
that timed out).

  scripts/bench.py [--only throughput,idle,cpu,overhead,scaleout] [--bin PATH]
                   [--worker-env KEY=VALUE ...]

Everything it starts (clusters, simulators, workers, kcat) is stopped on exit,
Ctrl-C and SIGTERM included; logs live in a temporary folder, and a broken
worker's last log lines are printed.
"""

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = ROOT / ".build" / "release" / "account-worker"
TOKEN = "user:1-bench"
COMMANDS = "runway.accounts.commands"
RESULTS = "runway.accounts.results"
TOPICS = [COMMANDS, RESULTS, "runway.accounts.dlq", "runway.accounts.status"]
PARTITIONS = 6
SCENARIOS = ["throughput", "idle", "cpu", "overhead", "scaleout"]
# A group of replicas normally settles in ~3 s (the mock coordinator's join
# window); see start_replicas for why a stalled join is retried.
JOIN_TIMEOUT = 20
JOIN_ATTEMPTS = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

BIN = DEFAULT_BIN
# --worker-env KEY=VALUE settings, given to every worker (for experiments).
WORKER_ENV = {}
# Every child process we start, so that any exit (an error, Ctrl-C, SIGTERM)
# can stop them all: a leftover mock cluster or worker would skew the next run.
CHILDREN = []


class BenchError(Exception):
    """Something is broken (not merely slow): the run exits 1."""


# ---------------------------------------------------------------- helpers


def free_port():
    # Binding port 0 lets the kernel pick a port nobody uses right now.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, log_path, env=None, stdin=subprocess.DEVNULL, stdout=None):
    log = open(log_path, "ab")
    proc = subprocess.Popen(args, env=env, stdin=stdin, stdout=stdout or log, stderr=log)
    proc.log_path = log_path
    CHILDREN.append(proc)
    return proc


def stop(proc, timeout=15.0):
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if killed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def stop_all_children():
    for proc in reversed(CHILDREN):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in reversed(CHILDREN):
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    | " + line[:300] for line in text[-lines:]) or "    | (empty log)"


def wait_until(predicate, timeout, what, check=lambda: None, interval=0.05):
    """Polls `predicate` until true; `check` raises when waiting is pointless."""
    deadline = time.monotonic() + timeout
    while True:
        check()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def parse_time(text):
    """processedAt is ISO-8601 UTC with milliseconds, e.g. 2024-11-22T09:09:59.301Z."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(sorted_values, q):
    # Nearest rank: a value that was actually measured.
    return sorted_values[max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))]


def upserts(prefix, n):
    """N upserts for N distinct accounts: (email, command id, kcat line keyed by email)."""
    for i in range(n):
        email = f"{prefix}-{i}@example.com"
        command_id = f"{prefix}-{i}"
        value = json.dumps({"id": command_id, "email": email, "password": "pw", "maxJobs": 5}, separators=(",", ":"))
        yield email, command_id, f"{email}\t{value}\n"


def kib(status, field):
    return int(status[field].split()[0])


def mib(kib_value):
    return f"{kib_value / 1024:.1f} MiB"


# ---------------------------------------------------------------- local stack


class LocalStack:
    """A fresh mock Kafka cluster and useapi simulator, stopped on exit."""

    def __init__(self, workdir, latency_ms):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.latency_ms = latency_ms
        bootstrap = self.workdir / "bootstrap"
        self.kafka = spawn(
            [BIN, "dev-kafka", "--partitions", str(PARTITIONS), "--topics", ",".join(TOPICS), "--bootstrap-file", bootstrap],
            self.workdir / "dev-kafka.log",
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: bootstrap.exists() and bootstrap.read_text().strip(), 20, "dev-kafka's bootstrap servers",
                   check=lambda: self.check_alive())
        self.brokers = bootstrap.read_text().strip()
        self.sim_port = free_port()
        self.simulator = spawn(
            [BIN, "simulate-useapi", "--port", str(self.sim_port), "--latency-ms", str(latency_ms), "--log-level", "warning"],
            self.workdir / "simulator.log",
            env={**base_env(), "USEAPI_TOKEN": TOKEN},
        )
        wait_until(self.simulator_listens, 20, "the useapi simulator to listen", check=lambda: self.check_alive())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop(self.simulator, 5)
        stop(self.kafka, 5)

    def simulator_listens(self):
        try:
            socket.create_connection(("127.0.0.1", self.sim_port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def check_alive(self):
        for name, proc in (("dev-kafka", self.kafka), ("simulate-useapi", getattr(self, "simulator", None))):
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}\n{log_tail(proc.log_path)}")

    def produce(self, lines, partition=None):
        """Produces tab-keyed lines; -p pins a partition (else the key's hash picks one)."""
        self.produce_many({partition: lines})

    def produce_many(self, batches):
        """Produces each {partition: lines} batch with its own kcat -P, all at
        once, so the last partition's commands do not arrive later than the
        first's (a replica that starts late would lower the measured rate)."""
        runs = []
        for partition, lines in batches.items():
            args = ["kcat", "-b", self.brokers, "-P", "-t", COMMANDS, "-K", "\t"]
            if partition is not None:
                args += ["-p", str(partition)]
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            CHILDREN.append(proc)
            runs.append((proc, "".join(lines).encode()))
        for proc, data in runs:
            try:
                _, stderr = proc.communicate(data, timeout=60)
            except subprocess.TimeoutExpired:
                raise BenchError("kcat -P did not finish in 60 s")
            if proc.returncode != 0:
                raise BenchError(f"kcat -P failed ({proc.returncode}): {stderr.decode(errors='replace')[-500:]}")

    def paced_producer(self):
        """A kcat -P that produces each line as it arrives on stdin. linger.ms=0:
        the command's timestamp is taken at produce time, so batching would
        otherwise count against the worker in the end-to-end figure."""
        return spawn(["kcat", "-b", self.brokers, "-P", "-t", COMMANDS, "-K", "\t", "-X", "linger.ms=0"],
                     self.workdir / "kcat-paced.log", stdin=subprocess.PIPE)

    def read_topic(self, topic):
        """Every record of `topic`: (Kafka timestamp in ms, value)."""
        done = subprocess.run(
            ["kcat", "-b", self.brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%T\t%s\n"],
            capture_output=True, timeout=60,
        )
        if done.returncode != 0:
            raise BenchError(f"kcat -C {topic} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
        records = []
        for line in done.stdout.decode().splitlines():
            if line.strip():
                stamp, value = line.split("\t", 1)
                records.append((int(stamp), value))
        return records

    def follow_results(self):
        return ResultFollower(self)


class ResultFollower:
    """Counts results as they arrive (one long-lived kcat -C), so a scenario
    knows the moment the last one is in without re-reading the topic in a loop
    (which would also compete with the worker for the 2 cores)."""

    def __init__(self, stack):
        self.count = 0
        self.changed = threading.Condition()
        self.proc = spawn(["kcat", "-b", stack.brokers, "-C", "-t", RESULTS, "-o", "beginning", "-u", "-q", "-f", "%o\n"],
                          stack.workdir / "kcat-follow.log", stdout=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for _ in self.proc.stdout:
            with self.changed:
                self.count += 1
                self.changed.notify_all()

    def wait_for(self, n, timeout, workers):
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < n:
                for worker in workers:
                    worker.check_alive()
                if self.proc.poll() is not None:
                    raise BenchError(f"the result reader (kcat -C) exited with {self.proc.returncode}")
                if time.monotonic() > deadline:
                    raise BenchError(f"timed out after {timeout:.0f} s: {self.count} of {n} results arrived")
                self.changed.wait(0.2)

    def close(self):
        stop(self.proc, 5)


def base_env():
    # A clean environment: a stray MAX_IN_FLIGHT or KAFKA_CONFIG_* in the
    # caller's shell must not change what is measured.
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}


# ---------------------------------------------------------------- worker


class Worker:
    """One `account-worker run` replica with its own /readyz port."""

    def __init__(self, stack, name, group, max_in_flight, extra_env=None):
        self.name = name
        self.http_port = free_port()
        self.started = time.time()
        env = {
            **base_env(),
            "KAFKA_BROKERS": stack.brokers,
            "KAFKA_GROUP_ID": group,
            "USEAPI_BASE_URL": f"http://127.0.0.1:{stack.sim_port}",
            "USEAPI_TOKEN": TOKEN,
            "MAX_IN_FLIGHT": str(max_in_flight),
            # MAX_BUFFERED_COMMANDS stays at its default, max(256, 4 x MAX_IN_FLIGHT), which is >= C.
            "HTTP_PORT": str(self.http_port),
            "WORKER_ID": name,
            # The default level: a line per command is part of what is measured.
            "LOG_LEVEL": "info",
            "SHUTDOWN_TIMEOUT_MS": "5000",
            # librdkafka's mock broker holds a fetch for the whole
            # fetch.wait.max.ms (500 ms) even when records arrive meanwhile; a
            # real broker answers as soon as fetch.min.bytes (1) is there. With
            # the default, records paced in arrive in half-second bursts and
            # the overhead figures measure the mock, not the worker.
            "KAFKA_CONFIG_FETCH_WAIT_MAX_MS": "10",
            # As deploy/Dockerfile sets it.
            "MALLOC_ARENA_MAX": "2",
            **WORKER_ENV,
            **(extra_env or {}),
        }
        self.proc = spawn([BIN, "run"], stack.workdir / f"{name}.log", env=env)
        self.pid = self.proc.pid

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"worker {self.name} exited with {self.proc.returncode}\n{log_tail(self.proc.log_path)}")

    def readyz(self):
        """(HTTP status, body) of /readyz, or None while the server is not up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (OSError, ValueError):
            return None

    def owns(self, partitions):
        answer = self.readyz()
        return answer is not None and answer[0] == 200 and answer[1].get("assignedPartitions") == partitions

    def wait_owning(self, partitions, timeout=60):
        """Waits until ready with exactly `partitions` partitions; returns seconds since start."""
        wait_until(lambda: self.owns(partitions), timeout, f"worker {self.name} to own {partitions} partitions "
                   f"(last /readyz: {self.readyz()})", check=self.check_alive, interval=0.1)
        return time.time() - self.started

    def status(self):
        """/proc/PID/status as a dict (values as text, e.g. '12345 kB')."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return fields

    def cpu_seconds(self):
        # utime and stime are fields 14 and 15; split after the ')' that ends
        # the command name, which may itself hold spaces.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self):
        """Graceful stop; a worker that exits non-zero or hangs is broken."""
        self.check_alive()
        code = stop(self.proc, 20)
        if code != 0:
            raise BenchError(f"worker {self.name} stopped with exit code {code}\n{log_tail(self.proc.log_path)}")


# ---------------------------------------------------------------- results


def collect_results(stack, expected_ids):
    """Reads the result topic and checks it: exactly one ok result per command."""
    records = stack.read_topic(RESULTS)
    results = []
    for stamp, value in records:
        result = json.loads(value)
        result["_kafkaTimestamp"] = stamp
        results.append(result)
    ids = [r.get("commandId") for r in results]
    not_ok = [r for r in results if r.get("status") != "ok"]
    problems = []
    if len(results) != len(expected_ids):
        problems.append(f"{len(results)} results for {len(expected_ids)} commands")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} duplicate commandIds")
    if set(ids) != set(expected_ids):
        problems.append(f"{len(set(expected_ids) - set(ids))} commands without a result, "
                        f"{len(set(ids) - set(expected_ids))} unknown commandIds")
    if not_ok:
        sample = {k: not_ok[0].get(k) for k in ("commandId", "code", "stage", "error")}
        problems.append(f"{len(not_ok)} results not ok, e.g. {sample}")
    if problems:
        raise BenchError("; ".join(problems))
    return results


def call_window(results):
    """(first start, last end) in epoch seconds. End = processedAt (taken once
    the call is done); start = processedAt - durationMs, i.e. when the worker
    consumed the command (durationMs runs from consuming to publishing)."""
    ends = [parse_time(r["processedAt"]) for r in results]
    starts = [end - r["durationMs"] / 1000 for end, r in zip(ends, results)]
    return min(starts), max(ends)


def throughput_of(results):
    first, last = call_window(results)
    return len(results) / (last - first), first, last


# ---------------------------------------------------------------- scenarios


def scenario_throughput(workdir, report, latency_ms, n=4000, c=64):
    """N commands published before the worker starts, so it never waits for
    input: the throughput is bounded by Little's law, C / L."""
    ceiling = c * 1000 / latency_ms
    print(f"\n== throughput: C={c}, L={latency_ms} ms, N={n} distinct accounts, ceiling C/L = {ceiling:.0f}/s")
    with LocalStack(workdir, latency_ms) as stack:
        commands = list(upserts(f"tp{latency_ms}", n))
        stack.produce(line for _, _, line in commands)
        follower = stack.follow_results()
        worker = Worker(stack, f"bench-tp{latency_ms}", f"bench-tp{latency_ms}-{os.getpid()}", c)
        follower.wait_for(n, 60 + 4 * n / ceiling, [worker])
        # Read just before stopping: the peak and the state after the whole run.
        status = worker.status()
        worker.stop()
        follower.close()
        results = collect_results(stack, [cid for _, cid, _ in commands])
    rate, first, last = throughput_of(results)
    print(f"  worker start -> first command consumed: {first - worker.started:.2f} s (group join, not counted)")
    print(f"  {n} results in {last - first:.2f} s: {rate:.0f} commands/s; C/L = {ceiling:.0f}/s; ratio {rate / ceiling:.2f}")
    report.append((f"throughput C={c} L={latency_ms}ms", f"{rate:.0f}/s", f"{ceiling:.0f}/s", f"{rate / ceiling:.2f}"))
    if latency_ms == 50:
        print(f"  worker memory before stopping: VmHWM (peak RSS) {mib(kib(status, 'VmHWM'))}, "
              f"VmRSS {mib(kib(status, 'VmRSS'))} (RssAnon {mib(kib(status, 'RssAnon'))}, "
              f"RssFile {mib(kib(status, 'RssFile'))}), threads {status['Threads']}")
        report.append((f"peak RSS (VmHWM) C={c} L={latency_ms}ms", mib(kib(status, "VmHWM")), "", ""))
        report.append((f"RssAnon / RssFile after the run", f"{mib(kib(status, 'RssAnon'))} / {mib(kib(status, 'RssFile'))}", "", ""))
        report.append((f"threads C={c} L={latency_ms}ms", status["Threads"], "", ""))


def scenario_idle(stack, report, c=64):
    """A worker that joined its group and owns every partition, nothing to do."""
    print(f"\n== idle: MAX_IN_FLIGHT={c}, empty command topic")
    worker = Worker(stack, "bench-idle", f"bench-idle-{os.getpid()}", c)
    joined = worker.wait_owning(PARTITIONS)
    # A moment for start-up work that runs just after the join (first lag
    # sample, HTTP client pool) to settle, so the figure is the resting one.
    time.sleep(1)
    status = worker.status()
    print(f"  joined and owning {PARTITIONS} partitions {joined:.2f} s after start")
    print(f"  VmRSS {mib(kib(status, 'VmRSS'))} (RssAnon {mib(kib(status, 'RssAnon'))}, "
          f"RssFile {mib(kib(status, 'RssFile'))}), threads {status['Threads']}")
    report.append(("idle RSS (VmRSS)", mib(kib(status, "VmRSS")), "", ""))
    report.append(("idle RssAnon / RssFile", f"{mib(kib(status, 'RssAnon'))} / {mib(kib(status, 'RssFile'))}", "", ""))
    report.append(("idle threads", status["Threads"], "", ""))
    report.append(("group join (1 replica, 6 partitions)", f"{joined:.2f} s", "", ""))
    return worker


def scenario_cpu(stack, report, worker, n=4000):
    """CPU time the worker spends per command when useapi answers at once
    (L=0): the CPU read before publishing and after the last result."""
    print(f"\n== cpu: L=0 ms, N={n} distinct accounts, worker already joined")
    if not worker.owns(PARTITIONS):
        worker.wait_owning(PARTITIONS)
    commands = list(upserts("cpu", n))
    follower = stack.follow_results()
    before = worker.cpu_seconds()
    started = time.monotonic()
    stack.produce(line for _, _, line in commands)
    follower.wait_for(n, 120, [worker])
    after = worker.cpu_seconds()
    wall = time.monotonic() - started
    worker.stop()
    follower.close()
    results = collect_results(stack, [cid for _, cid, _ in commands])
    rate, first, last = throughput_of(results)
    per_command = (after - before) * 1000 / n
    print(f"  worker CPU during the run: {after - before:.2f} s for {n} commands = {per_command:.3f} ms/command "
          f"(wall {wall:.2f} s from publishing, {rate:.0f} commands/s)")
    print(f"  worker CPU since its start: {after:.2f} s = {after * 1000 / n:.3f} ms/command (start-up and join included)")
    report.append(("CPU per command, L=0", f"{per_command:.3f} ms", "", ""))
    report.append(("total process CPU / N, L=0", f"{after * 1000 / n:.3f} ms", "", ""))
    report.append(("throughput L=0 (C=64)", f"{rate:.0f}/s", "", ""))


def scenario_overhead(workdir, report, c=64, latency_ms=50, rate=640, seconds=6.0, warmup=0.5):
    """At half of C/L the worker should add little to each call: overhead =
    durationMs - L. Commands are paced into one kcat -P, the worker already
    joined, so the offered load is steady rather than a backlog."""
    n = int(rate * seconds)
    print(f"\n== overhead: C={c}, L={latency_ms} ms (C/L = {c * 1000 // latency_ms}/s), offered {rate}/s for {seconds:.0f} s "
          f"(N={n}), first {warmup} s of commands skipped as warm-up (new HTTP connections)")
    with LocalStack(workdir, latency_ms) as stack:
        worker = Worker(stack, "bench-overhead", f"bench-overhead-{os.getpid()}", c)
        worker.wait_owning(PARTITIONS)
        follower = stack.follow_results()
        commands = list(upserts("oh", n))
        producer = stack.paced_producer()
        start = time.monotonic()
        sent = 0
        # Write every line that is due, then sleep a little: the pace holds on
        # average even when a sleep overshoots.
        while sent < n:
            due = min(n, int((time.monotonic() - start) * rate) + 1)
            if due > sent:
                producer.stdin.write("".join(line for _, _, line in commands[sent:due]).encode())
                producer.stdin.flush()
                sent = due
            time.sleep(0.005)
        producer.stdin.close()
        if producer.wait(30) != 0:
            raise BenchError(f"the paced kcat -P exited with {producer.returncode}\n{log_tail(producer.log_path)}")
        follower.wait_for(n, 60, [worker])
        worker.stop()
        follower.close()
        results = collect_results(stack, [cid for _, cid, _ in commands])
        produced = {json.loads(value)["id"]: stamp for stamp, value in stack.read_topic(COMMANDS)}
    first_command = min(produced.values())
    offered = (len(produced) - 1) / ((max(produced.values()) - first_command) / 1000)
    steady = [r for r in results if produced[r["commandId"]] >= first_command + warmup * 1000]
    overhead = sorted(r["durationMs"] - latency_ms for r in steady)
    end_to_end = sorted(r["_kafkaTimestamp"] - produced[r["commandId"]] - latency_ms for r in steady)
    everything = sorted(r["durationMs"] - latency_ms for r in results)
    achieved, first, last = throughput_of(results)
    print(f"  offered {offered:.0f} commands/s (from the commands' Kafka timestamps); {len(steady)} results after warm-up")
    # Below the offered rate the backlog grows, and the figures below then
    # measure queueing as much as the worker's own cost.
    kept_up = "kept up" if achieved >= 0.95 * offered else "did NOT keep up: a backlog built, the figures include queueing"
    print(f"  worker throughput {achieved:.0f} commands/s over {last - first:.2f} s: {kept_up}")
    print(f"  overhead durationMs - L: p50 {percentile(overhead, .5)} ms, p99 {percentile(overhead, .99)} ms, "
          f"max {overhead[-1]} ms (max with warm-up: {everything[-1]} ms)")
    print(f"  end to end (result timestamp - command timestamp - L): p50 {percentile(end_to_end, .5)} ms, "
          f"p99 {percentile(end_to_end, .99)} ms, max {end_to_end[-1]} ms")
    report.append(("throughput at 640/s offered (C=64, L=50ms)", f"{achieved:.0f}/s", f"{offered:.0f}/s", f"{achieved / offered:.2f}"))
    report.append(("overhead p50 / p99 / max (L=50, 640/s)",
                   f"{percentile(overhead, .5)} / {percentile(overhead, .99)} / {overhead[-1]} ms", "", ""))
    report.append(("end to end - L, p50 / p99", f"{percentile(end_to_end, .5)} / {percentile(end_to_end, .99)} ms", "", ""))


def start_replicas(workdir, replicas, c, latency_ms):
    """A fresh stack with `replicas` workers in one group, each owning its
    6 / replicas partitions (range assignor); returns (stack, workers, join
    seconds, attempt number).

    librdkafka 2.0.2's mock coordinator sometimes answers a follower's
    SyncGroup with INVALID_REQUEST when several members join in the same
    round; the follower rejoins and the group then sits for ~45 s (a session
    timeout) with partitions unowned. That is the mock, not the worker (the
    worker's revocations take milliseconds), so such a start is retried on a
    fresh cluster, and said so, rather than waited out."""
    for attempt in range(1, JOIN_ATTEMPTS + 1):
        stack = LocalStack(Path(workdir) / f"attempt{attempt}", latency_ms)
        try:
            group = f"bench-scale{replicas}-{os.getpid()}-{attempt}"
            workers = [Worker(stack, f"bench-scale{replicas}-{i}", group, c) for i in range(replicas)]
            started = time.time()
            try:
                wait_until(lambda: all(w.owns(PARTITIONS // replicas) for w in workers), JOIN_TIMEOUT,
                           f"{replicas} replicas to own {PARTITIONS // replicas} partitions each",
                           check=lambda: [w.check_alive() for w in workers], interval=0.1)
            except BenchError:
                owned = [(w.readyz() or (None, {}))[1].get("assignedPartitions") for w in workers]
                if attempt == JOIN_ATTEMPTS:
                    raise BenchError(f"{replicas} replicas did not all own their partitions within {JOIN_TIMEOUT} s "
                                     f"in {JOIN_ATTEMPTS} attempts (partitions owned: {owned})")
                print(f"  {replicas} replicas: group join stalled (partitions owned after {JOIN_TIMEOUT} s: {owned}); "
                      f"retrying on a fresh cluster")
                for worker in workers:
                    stop(worker.proc, 15)
                stack.__exit__()
                continue
            return stack, workers, time.time() - started, attempt
        except BaseException:
            stack.__exit__()
            raise


def run_scaleout(workdir, replicas, c, latency_ms, n):
    """Throughput of `replicas` workers in one group, the commands published
    once every replica owns its partitions. Returns (commands/s, ceiling,
    join time text, sum of the replicas' own rates)."""
    per_partition = n // PARTITIONS
    stack, workers, joined, attempt = start_replicas(workdir, replicas, c, latency_ms)
    with stack:
        follower = stack.follow_results()
        commands = list(upserts(f"scale{replicas}", n))
        # -p pins each batch to its partition: exactly n / 6 per partition,
        # whatever the keys hash to, so no replica gets more than its share.
        batches = {p: commands[p * per_partition:(p + 1) * per_partition] for p in range(PARTITIONS)}
        stack.produce_many({p: [line for _, _, line in batch] for p, batch in batches.items()})
        ids = [cid for batch in batches.values() for _, cid, _ in batch]
        follower.wait_for(len(ids), 60 + 4 * len(ids) / (replicas * c * 1000 / latency_ms), workers)
        for worker in workers:
            worker.stop()
        follower.close()
        results = collect_results(stack, ids)
    rate, first, last = throughput_of(results)
    ceiling = replicas * c * 1000 / latency_ms
    retried = f" (start attempt {attempt}: earlier joins stalled)" if attempt > 1 else ""
    print(f"  {replicas} replica(s): all owning their partitions {joined:.2f} s after start{retried}; {len(results)} results in "
          f"{last - first:.2f} s: {rate:.0f} commands/s (ceiling {ceiling:.0f}/s, ratio {rate / ceiling:.2f})")
    # Each replica's own window shows whether one started late or ran slow.
    # A replica whose first fetch was already waiting when the commands were
    # published sees them up to fetch.wait.max.ms (500 ms) late: the mock
    # broker holds an empty fetch for its whole wait, new records or not.
    own_rates = 0
    for name in sorted({r["worker"] for r in results}):
        own = [r for r in results if r["worker"] == name]
        own_rate, own_first, own_last = throughput_of(own)
        own_rates += own_rate
        print(f"    {name}: {len(own)} results, first consumed at +{own_first - first:.2f} s, "
              f"last done at +{own_last - first:.2f} s, {own_rate:.0f} commands/s")
    return rate, ceiling, f"{joined:.2f} s" + (f" (attempt {attempt}; earlier stalled)" if attempt > 1 else ""), own_rates


def scenario_scaleout(workdir, report, c=8, latency_ms=100, n=1200):
    """Replicas add capacity when the work is I/O-bound: 3 replicas should do
    close to 3 times what one does (goal >= 2.8x)."""
    print(f"\n== scale-out: MAX_IN_FLIGHT={c}, L={latency_ms} ms per replica ({c * 1000 // latency_ms}/s ceiling each), "
          f"N={n} distinct accounts, {n // PARTITIONS} per partition")
    one, one_ceiling, _, _ = run_scaleout(workdir / "one", 1, c, latency_ms, n)
    three, three_ceiling, joined, three_sum = run_scaleout(workdir / "three", 3, c, latency_ms, n)
    print(f"  3 replicas / 1 replica: {three / one:.2f}x (goal >= 2.8x); from the sum of the replicas' own rates "
          f"(their start skew left out): {three_sum / one:.2f}x")
    report.append((f"scale-out 1 replica (C={c}, L={latency_ms}ms)", f"{one:.0f}/s", f"{one_ceiling:.0f}/s", f"{one / one_ceiling:.2f}"))
    report.append((f"scale-out 3 replicas", f"{three:.0f}/s", f"{three_ceiling:.0f}/s", f"{three / three_ceiling:.2f}"))
    report.append(("scale-out 3 / 1", f"{three / one:.2f}x", ">= 2.8x", f"{three / one / 2.8:.2f}"))
    report.append(("scale-out 3 / 1, sum of replicas' own rates", f"{three_sum / one:.2f}x", ">= 2.8x", f"{three_sum / one / 2.8:.2f}"))
    report.append(("group join (3 replicas, 2 partitions each)", joined, "", ""))


# ---------------------------------------------------------------- main


def run(selected, workdir, report, problems):
    def attempt(name, body):
        # One broken scenario does not hide the figures of the others.
        try:
            return body()
        except BenchError as error:
            problems.append(f"{name}: {error}")
            print(f"  BROKEN: {error}")
        return None

    if "throughput" in selected:
        attempt("throughput L=200", lambda: scenario_throughput(workdir / "tp200", report, 200))
        attempt("throughput L=50", lambda: scenario_throughput(workdir / "tp50", report, 50))
    if "idle" in selected or "cpu" in selected:
        # The CPU scenario measures the worker the idle scenario started.
        with LocalStack(workdir / "idle", 0) as stack:
            worker = attempt("idle", lambda: scenario_idle(stack, report))
            if worker is not None and "cpu" in selected:
                attempt("cpu", lambda: scenario_cpu(stack, report, worker))
            if worker is not None:
                attempt("idle (stop)", lambda: worker.stop() if worker.proc.poll() is None else None)
    if "overhead" in selected:
        attempt("overhead", lambda: scenario_overhead(workdir / "overhead", report))
    if "scaleout" in selected:
        attempt("scale-out", lambda: scenario_scaleout(workdir / "scaleout", report))


def print_table(report):
    header = ("figure", "value", "ceiling/goal", "ratio")
    widths = [max(len(str(row[i])) for row in [header] + report) for i in range(4)]
    print()
    for row in [header, tuple("-" * w for w in widths)] + report:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def interrupted(signum, frame):
    raise KeyboardInterrupt(signum)


def main():
    global BIN
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios to run (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra setting for every worker, e.g. MAX_BUFFERED_COMMANDS=8192 (repeatable)")
    parser.add_argument("--bin", default=os.environ.get("ACCOUNT_WORKER_BIN", str(DEFAULT_BIN)),
                        help="the account-worker binary (default: the release build)")
    args = parser.parse_args()
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(selected) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    BIN = Path(args.bin)
    for setting in args.worker_env:
        key, equals, value = setting.partition("=")
        if not equals or not key:
            parser.error(f"--worker-env wants KEY=VALUE, got {setting!r}")
        WORKER_ENV[key] = value
    if not os.access(BIN, os.X_OK):
        sys.exit(f"bench: {BIN} is missing: build it with `swift build -c release --product account-worker --static-swift-stdlib` (make bench does)")
    for tool in ("kcat",):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"bench: {tool} is missing (make deps installs it)")

    # SIGTERM (e.g. from a CI runner) takes the same path as Ctrl-C: the
    # finally below stops every child.
    signal.signal(signal.SIGTERM, interrupted)
    print(f"bench: {BIN} ({os.cpu_count()} CPUs), scenarios: {', '.join(selected)}"
          + (f", worker settings {WORKER_ENV}" if WORKER_ENV else ""))
    report, problems = [], []
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="account-worker-bench-") as tmp:
            workdir = Path(tmp)
            try:
                run(selected, workdir, report, problems)
            finally:
                # Before the folder goes: the children write their logs there.
                stop_all_children()
    except KeyboardInterrupt as interruption:
        print("\nbench: interrupted", file=sys.stderr)
        return 128 + (interruption.args[0] if interruption.args else signal.SIGINT)
    print_table(report)
    print(f"\nbench: {time.monotonic() - started:.0f} s in all")
    if problems:
        print("\nbench: BROKEN:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
