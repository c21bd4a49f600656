"""One sandbox run under a given isolation, and its trusted outcome (``runner.py`` picks the isolation).

Tests that ``calls.py`` can express as calls and checks take the strong path: the sandbox returns outputs
and ``judge.py`` decides here. Others take the weak path: the harness's in-process report decides.
"""

from __future__ import annotations

import os
import secrets
import signal
import time

from training.sandbox.calls import CallPlan, call_plan
from training.sandbox.cgroups import RunCgroup, cgroup_support
from training.sandbox.cold import run_cold
from training.sandbox.isolation import NoFreeUid, leased_uid, seccomp_filter
from training.sandbox.job import SANDBOX_VERSION, RunResult, SandboxJob
from training.sandbox.judge import judge
from training.sandbox.limits import cgroup_cpus, outputs_limit, rlimits
from training.sandbox.program import program_source, split_tests
from training.sandbox.protocol import HarnessJob, read_report
from training.sandbox.streams import Ran
from training.sandbox.warm import run_warm, warm_wanted


def run_isolated(job: SandboxJob, isolation: str) -> RunResult:
    """Run ``prompt + completion`` and then its tests in a fresh sandbox, and return the trusted outcome."""
    started = time.monotonic()
    plan = call_plan(tests=job.tests, style=job.style, entry_point=job.entry_point) if job.strong else None
    strength = "strong" if plan else "weak"
    try:
        chunks = split_tests(tests=job.tests, style=job.style, entry_point=job.entry_point)
    except ValueError as exc:
        message = f"[sandbox] {exc}\n"
        return RunResult("error", time.monotonic() - started, "", message, isolation, SANDBOX_VERSION, strength)
    filter_ = seccomp_filter()
    orders = HarnessJob(
        program=program_source(prompt=job.prompt, completion=job.completion, style=job.style),
        tests=chunks,
        limits=rlimits(timeout=job.timeout, memory_mb=job.memory_mb, max_processes=job.max_processes),
        nonce=secrets.token_hex(16).encode(),
        calls=[(c.function, c.args, c.kwargs) for c in plan.calls] if plan else None,
        setup=plan.setup if plan else "",
        seccomp=None if isolation == "bubblewrap" else filter_,  # bwrap installs it for the whole sandbox
    )
    ran = _launch(job, orders, isolation=isolation, started=started)
    if isinstance(ran, str):
        return RunResult("error", time.monotonic() - started, "", ran, isolation, SANDBOX_VERSION, strength)
    duration = time.monotonic() - started
    details = {"limits": _limits_held(ran, filter_ is not None)}
    if ran.cgroup_version:
        details["cgroup_events"] = ran.cgroup_events
    if plan:
        details["calls"] = len(plan.calls)
        outcome, problem = _strong_outcome(ran, orders, plan, timeout=job.timeout)
    else:
        outcome, problem = _outcome(ran, orders, timeout=job.timeout)
    if ran.cgroup_events.get("oom_kills", 0) > 0 and outcome in ("passed", "error"):
        outcome, problem = "error", f"the memory limit ({job.memory_mb} MB, cgroup) killed a process of the run"
    note = f"\n[sandbox] {problem}\n" if problem else ""
    stdout, stderr = ran.stdout.text(), ran.stderr.text(note)
    return RunResult(outcome, duration, stdout, stderr, isolation, SANDBOX_VERSION, strength, details)


def _limits_held(ran: Ran, seccomp: bool) -> dict[str, str]:
    """Which limits held on this run, for the result's details."""
    limits = {"memory": "RLIMIT_AS", "pids": "RLIMIT_NPROC", "cpu": "RLIMIT_CPU"}
    support = cgroup_support()
    if ran.cgroup_version:
        for controller in support.bases:
            limits[controller] = f"cgroup v{ran.cgroup_version} + {limits[controller]}"
        limits["cgroup"] = f"v{ran.cgroup_version}"
    else:
        limits["memory"] = "RLIMIT_AS only (tmpfs, memfd and SysV memory not counted)"
        limits["cgroup"] = f"none: {support.why or 'could not make one for this run'}"
    limits["seccomp"] = "refuses SysV IPC, memfd_create, user namespaces" if seccomp else "none on this machine"
    return limits


def _launch(job: SandboxJob, orders: HarnessJob, *, isolation: str, started: float) -> Ran | str:
    """A warm sandbox (its own cgroup, limits set per run) where one serves, else a cold one with a cgroup made
    for this run; under a uid no other run holds until everything of this one is killed."""
    try:
        with leased_uid() as uid:
            return _launch_as(job, orders, isolation=isolation, started=started, uid=uid)
    except NoFreeUid as exc:
        return f"[sandbox] {exc}\n"


def _launch_as(job: SandboxJob, orders: HarnessJob, *, isolation: str, started: float, uid: int) -> Ran | str:
    report_limit = outputs_limit(job.tests)
    if isolation == "bubblewrap" and os.geteuid() == 0 and (warm_wanted() if job.warm is None else job.warm):
        ran = run_warm(
            orders,
            uid=uid,
            timeout=job.timeout,
            output_limit=job.output_limit,
            report_limit=report_limit,
            memory_bytes=job.memory_mb << 20,
            max_processes=job.max_processes,
        )
        if ran is not None:
            return ran
    cgroup = _run_cgroup(job)
    cgroup_fds: list[int] = []
    try:
        cgroup_fds = cgroup.procs_fds() if cgroup else []
        ran = run_cold(
            orders,
            isolation=isolation,
            uid=uid,
            deadline=started + job.timeout,
            output_limit=job.output_limit,
            report_limit=report_limit,
            cgroup_fds=cgroup_fds,
        )
    except OSError as exc:
        ran = f"[sandbox] cannot open the run's cgroup: {exc}\n"
    finally:
        for fd in cgroup_fds:
            os.close(fd)
        events = _cgroup_done(cgroup)
    if cgroup and isinstance(ran, Ran):
        ran.cgroup_version, ran.cgroup_events = cgroup.version, events
    return ran


def _run_cgroup(job: SandboxJob) -> RunCgroup | None:
    support = cgroup_support()
    if not support.version:
        return None
    try:  # one process more than the program's: the harness's trusted shim is in the cgroup too
        return RunCgroup.create(
            support, memory_bytes=job.memory_mb << 20, max_processes=job.max_processes + 1, cpus=cgroup_cpus()
        )
    except OSError:
        return None


def _cgroup_done(cgroup: RunCgroup | None) -> dict:
    if cgroup is None:
        return {}
    cgroup.kill()
    events = cgroup.events()
    cgroup.remove()
    return events


def _strong_outcome(ran: Ran, orders: HarnessJob, plan: CallPlan, *, timeout: float) -> tuple[str, str]:
    """The outputs decide, judged here; an error the harness reported stands (a program that does not load)."""
    report = bytes(ran.report.head)
    if ran.report.total > len(report):
        return "error", f"the outputs exceed {len(report)} bytes: not judged"
    try:
        outcome, problem = judge(report, nonce=orders.nonce, plan=plan)
    except Exception as exc:  # noqa: BLE001 - a value no check foresaw: not passed, and the batch goes on
        return "error", f"the supervisor could not judge the outputs ({type(exc).__name__}): not passed"
    if outcome is not None:
        return outcome, problem
    reported, _ = read_report(report, nonce=orders.nonce, expected_asserts=-1)
    if reported in ("error", "failed"):
        return reported, ""
    return _killed(ran, timeout) or ("error", f"{problem} from the harness (exit status {ran.returncode})")


def _outcome(ran: Ran, orders: HarnessJob, *, timeout: float) -> tuple[str, str]:
    """The harness's report decides; without one, a kill for time is a timeout and anything else an error."""
    expected_asserts = sum(asserts for _, _, asserts in orders.tests)
    outcome, problem = read_report(bytes(ran.report.head), nonce=orders.nonce, expected_asserts=expected_asserts)
    if outcome is not None:
        return outcome, problem
    return _killed(ran, timeout) or ("error", f"{problem} from the harness (exit status {ran.returncode}): not passed")


def _killed(ran: Ran, timeout: float) -> tuple[str, str] | None:
    cpu_killed = ran.returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    if ran.timed_out or cpu_killed:
        return "timeout", f"killed after {'the CPU limit' if cpu_killed else f'{timeout:g} s'}"
    return None
