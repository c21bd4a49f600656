"""The trusted runner that training/sandbox/ starts inside the sandbox: ``python -I -S -B harness.py <fd>``.

It reads its job from the inherited file descriptor ``<fd>`` (a marshal'd dict written by the host, closed
before any untrusted code runs), joins the run's cgroup, applies the resource limits, drops to the unprivileged
uid when started as root, installs the seccomp filter where bwrap did not, and runs the program. Then, on the
strong path, it calls the function with each set of arguments it was given and writes the outputs (tagged
JSON) to the report pipe, for the host to judge; on the weak path it runs the test chunks one by one and only
then writes a one-line report carrying the per-run nonce. The host trusts nothing else: not the exit status,
not stdout.

Kept to builtins and ``resource`` so that it starts in a few milliseconds; everything the report depends on
(``os.write``, ``os.getpid``, ``exec``, ``compile``) is bound before untrusted code can patch it.
"""

import marshal
import os
import sys


def _print_exception(exc, program_lines, tests_source):
    """A traceback on stderr for the people reading the outcome; best effort, never part of the verdict."""
    try:
        import linecache
        import traceback

        linecache.cache["<completion>"] = (0, None, program_lines, "<completion>")
        linecache.cache["<tests>"] = (0, None, tests_source.splitlines(True), "<tests>")
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
    except BaseException:  # noqa: B036 - the program may have broken traceback itself
        try:
            os.write(2, f"{type(exc).__name__}: {exc}\n".encode("utf-8", "replace"))
        except BaseException:  # noqa: B036
            pass


def _enter(infd, report_fd, fresh_mounts, cgroup_fds=None):
    """Read the job, then set the run up (cgroup, shim, namespaces, limits, uid, directory, seccomp): all
    before the program runs, so module-level code is safe here. Returns the job and the report fd."""
    job = marshal.loads(os.pread(infd, os.fstat(infd).st_size, 0))
    os.close(infd)
    sys.argv = ["solution"]
    if report_fd is None:
        report_fd = job["report_fd"]
    for fd in job["cgroup_fds"] if cgroup_fds is None else cgroup_fds:
        try:  # into the run's cgroup, through a cgroup.procs the host opened: shim, program and all it forks
            os.write(fd, b"0")
            os.close(fd)
        except BaseException as exc:  # noqa: B036 - the host counts on these limits: no run without them
            os.write(2, f"sandbox: cannot join the run's cgroup: {exc}\n".encode())
            os._exit(1)

    if job["shim"]:
        # A trusted parent for the program. Under bubblewrap it is pid 1 of the namespace (bwrap --as-pid-1):
        # it reaps orphans, and when it exits the kernel kills whatever the program left, while bwrap itself
        # reaps it (bwrap's own pid-1 reaper outlives bwrap and piles up as zombies under a container's init).
        # Without namespaces it stands between the program and the caller, so kill(getppid()) hits the shim.
        child = os.fork()
        if child:
            os.close(report_fd)
            os._exit(_exit_code(_reap(child)))

    if fresh_mounts is not None:
        try:
            fresh_mounts(job["tmpfs_bytes"])
        except BaseException as exc:  # noqa: B036 - no fresh /tmp, no run
            os.write(2, f"sandbox: cannot set up the run's namespaces: {exc}\n".encode())
            os._exit(1)

    import resource

    for name, soft, hard in job["limits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if job["uid"] is not None and os.getuid() == 0:
        _drop_to(job["uid"])
    if job["cwd"]:
        os.chdir(job["cwd"])
    if job["seccomp"]:
        try:
            _seccomp(job["seccomp"])
        except BaseException as exc:  # noqa: B036
            os.write(2, f"sandbox: cannot install the seccomp filter: {exc}\n".encode())
            os._exit(1)
    return job, report_fd


def _seccomp(program):
    """Install the host's classic-BPF filter on this process (under setpriv or rlimits; bwrap installs it
    itself): SysV IPC, memfd_create, user namespaces and the rest are refused from here on."""
    import ctypes

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    code = ctypes.create_string_buffer(program, len(program))
    fprog = Program(len(program) // 8, ctypes.addressof(code))
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def run_job(infd, report_fd=None, fresh_mounts=None, cgroup_fds=None):
    """Run one job read from ``infd``; never returns. Under a warm sandbox, ``fresh_mounts`` gives the run its
    own mount and IPC namespaces with a new /tmp and /dev/shm first, and the report pipe arrives as an fd.

    The test loop and the report writer must stay local names, bound before the untrusted program runs (the
    test loop is a closure that ``_test_runner`` makes beforehand); a module-level helper looked up afterwards
    could be replaced by that program to forge a pass.
    """
    write, getpid, exit_ = os.write, os.getpid, os._exit
    run_exec, run_compile = exec, compile
    settrace, setprofile = sys.settrace, sys.setprofile
    job, report_fd = _enter(infd, report_fd, fresh_mounts, cgroup_fds)

    nonce, me = job["nonce"], getpid()

    def report(status, phase, ran):
        # A process forked by the program carries a copy of this frame; only the original may speak.
        if getpid() == me:
            write(report_fd, b"codepref-sandbox-report %s %s %s %d\n" % (nonce, status, phase, ran))

    def flush():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: B036 - the program may have replaced or closed the stream
                pass

    program, tests, calls, setup = job["program"], job["tests"], job["calls"], job["setup"]
    del job
    program_lines = program.splitlines(True)
    scope = {"__name__": "solution", "__builtins__": __builtins__}
    run_tests = _test_runner(scope, program_lines, run_exec, run_compile, flush)

    try:
        run_exec(run_compile(program, "<completion>", "exec"), scope)
    except BaseException as exc:  # noqa: B036 - SystemExit from the program is an error, not an exit
        flush()
        _print_exception(exc, program_lines, "")
        flush()
        report(b"error", b"program", 0)
        exit_(1)

    # Trace or profile hooks set by the program could skip test lines; the tests run without them.
    settrace(None)
    setprofile(None)
    if calls is not None:  # the strong path: outputs only, judged by the host
        status = _answer_calls(scope, setup, calls, program_lines, write, report_fd, nonce, getpid() == me)
        flush()
        if status:
            report(status, b"program", 0)
        exit_(0 if not status else 1)
    status, ran = run_tests(tests)
    flush()
    report(status, b"tests", ran)
    exit_(0 if status == b"passed" else 1)


def _test_runner(scope, program_lines, run_exec, run_compile, flush):
    """The weak path's test loop, as a closure over references bound before the untrusted program runs (made
    then, so that ``run_job`` holds it as a local name). It runs the test chunks one by one in ``scope``,
    stopping at the first that does not compile or raises; returns (status, asserts run)."""

    def run_tests(tests):
        ran = 0
        status = b"passed"
        for src, line, asserts in tests:
            try:
                code = run_compile("\n" * (line - 1) + src, "<tests>", "exec")
            except BaseException as exc:  # noqa: B036
                status = b"error"
                _print_exception(exc, program_lines, "\n" * (line - 1) + src)
                break
            try:
                run_exec(code, scope)
            except Exception as exc:
                status = b"failed"
                flush()
                _print_exception(exc, program_lines, "\n" * (line - 1) + src)
                break
            except BaseException as exc:  # noqa: B036 - SystemExit, KeyboardInterrupt raised by the program
                status = b"error"
                flush()
                _print_exception(exc, program_lines, "\n" * (line - 1) + src)
                break
            ran += asserts
        return status, ran

    return run_tests


def _answer_calls(scope, setup, calls, program_lines, write, report_fd, nonce, original):
    """Run the tests' imports, then each call, and write their outputs (tagged JSON) to the report pipe;
    the host judges them. Returns None, or the status to report when the imports failed."""
    try:
        exec(compile(setup, "<tests>", "exec"), scope)
    except BaseException as exc:  # noqa: B036
        _print_exception(exc, program_lines, setup)
        return b"error"
    results = []
    for name, args, kwargs in calls:
        try:
            if name not in scope:
                raise NameError(f"name {name!r} is not defined")
            value = scope[name](*args, **kwargs)
        except Exception as exc:
            _print_exception(exc, program_lines, "")
            results.append('["raise",' + _json_str(_exception_text(exc)) + "]")
            continue
        except BaseException as exc:  # noqa: B036 - SystemExit and the like: an error, as on the weak path
            _print_exception(exc, program_lines, "")
            results.append('["exit",' + _json_str(_exception_text(exc)) + "]")
            results += ['["exit","not run"]'] * (len(calls) - len(results))
            break
        try:
            results.append('["ok",' + _encode(value, 0) + "]")
        except BaseException as exc:  # noqa: B036 - a type of its own, a cycle, a hostile __iter__
            results.append('["unencodable",' + _json_str(_exception_text(exc)) + "]")
    if original:
        data = b"codepref-sandbox-outputs %s %d\n[%s]\n" % (nonce, len(calls), ",".join(results).encode())
        view = memoryview(data)
        while view:
            view = view[write(report_fd, view) :]
    return None


def _exception_text(exc):
    try:
        return f"{type(exc).__name__}: {exc}"[:1000]
    except BaseException:  # noqa: B036 - a __str__ that raises
        return type(exc).__name__


_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {34: '\\"', 92: "\\\\"}


def _json_str(text):
    """A JSON string, ASCII only (lone surrogates included): what values.py's json.loads reads back."""
    text = text.translate(_ESCAPES)
    if not text.isascii():
        text = "".join(c if c <= "\x7f" else _escape_wide(ord(c)) for c in text)
    return '"' + text + '"'


def _escape_wide(code):
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _encode(value, depth):
    """Tagged JSON of a plain value (see values.py); raises TypeError for any other type."""
    if depth > 100:
        raise ValueError("a value nested deeper than 100")
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value) if -(1 << 53) < value < (1 << 53) else f'{{"int":"{hex(value)}"}}'
    if kind is float:
        return f'{{"float":"{value.hex()}"}}'
    if kind is str:
        return _json_str(value)
    if kind is list:
        return "[" + ",".join([_encode(item, depth + 1) for item in value]) + "]"
    if kind is complex:
        return f'{{"complex":["{value.real.hex()}","{value.imag.hex()}"]}}'
    if kind is bytes:
        return f'{{"bytes":"{value.hex()}"}}'
    if kind is tuple or kind is set or kind is frozenset:
        return '{"' + kind.__name__ + '":[' + ",".join([_encode(item, depth + 1) for item in value]) + "]}"
    if kind is dict:
        items = ",".join(["[" + _encode(k, depth + 1) + "," + _encode(v, depth + 1) + "]" for k, v in value.items()])
        return '{"dict":[' + items + "]}"
    raise TypeError(f"a {kind.__name__}")


def _reap(pid):
    """Wait for ``pid``, reaping any orphan handed to this process meanwhile; its wait status."""
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            return 1 << 8
        if done == pid:
            return status


def _exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _namespace_tools():
    """A function that gives the calling process new mount and IPC namespaces, with a fresh /tmp and
    /dev/shm (tmpfs of the given size) and /tmp as working directory. Needs the root of a bwrap without
    user namespace; Python 3.11 has no os.unshare, hence ctypes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, clone_newipc = 0x00020000, 0x08000000
    ms_nosuid, ms_nodev, ms_rec, ms_private = 0x2, 0x4, 0x4000, 0x40000

    def check(result, what):
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def fresh_mounts(tmpfs_bytes):
        check(libc.unshare(clone_newns | clone_newipc), "unshare")
        check(libc.mount(None, b"/", None, ms_rec | ms_private, None), "mount --make-rprivate /")
        options = b"size=%d,mode=1777" % tmpfs_bytes
        for target in (b"/tmp", b"/dev/shm"):
            check(libc.mount(b"tmpfs", target, b"tmpfs", ms_nosuid | ms_nodev, options), f"mount {target!r}")
        os.chdir("/tmp")

    return fresh_mounts


def _drop_to(uid):
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def serve(ctl_fd, cgroup_fds=()):
    """A warm sandbox: pid 1 of a bwrap namespace, root, never running untrusted code itself.

    It first joins the sandbox's cgroup (``cgroup_fds``), so that every runner is born in it. For each
    ``run <uid>`` message on the control socket, carrying the job, stdout, stderr and report fds, it
    forks a runner (fresh namespaces, then ``run_job``), waits for it, kills every process left with the run's
    uid, reaps them all, and answers ``done <exit code>``. The host never reuses a sandbox after a timeout.
    """
    import signal
    import socket

    for fd in cgroup_fds:  # the sandbox's cgroup, before anything runs: every runner is born in it
        os.write(fd, b"0")
        os.close(fd)
    ctl = socket.socket(fileno=ctl_fd)
    fresh_mounts = _namespace_tools()
    if not _runner_possible(fresh_mounts):
        ctl.send(b"broken")
        os._exit(1)
    ctl.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(ctl, 64, 8)
        except OSError:
            os._exit(1)
        if not message or len(fds) < 4 or not message.startswith(b"run "):
            os._exit(0 if not message else 1)
        uid = int(message[4:])
        runner = _start_runner(ctl_fd, fds, fresh_mounts)
        code = _exit_code(_reap(runner))
        killer = os.fork()
        if killer == 0:
            try:
                _drop_to(uid)
                os.kill(-1, signal.SIGKILL)  # every process of the run's uid but this one
            except BaseException:  # noqa: B036 - none left
                pass
            os._exit(0)
        while True:  # the killer and everything it killed
            try:
                os.wait()
            except ChildProcessError:
                break
        ctl.send(b"done %d" % code)


def _runner_possible(fresh_mounts):
    """Whether a runner can get its namespaces and drop to a uid here: tried in a child, which then exits."""
    probe = os.fork()
    if probe == 0:
        try:
            fresh_mounts(1 << 20)
            _drop_to(65534)
            os._exit(0)
        except BaseException:  # noqa: B036
            os._exit(1)
    return _reap(probe) == 0


def _start_runner(ctl_fd, fds, fresh_mounts):
    """Fork the runner of one ``run`` message (fds: job, stdout, stderr, report, then the run's cgroup): it
    writes to the given stdout and stderr and runs the job (fresh namespaces, then ``run_job``). Closes this
    process's copies of the fds; returns the runner's pid."""
    runner = os.fork()
    if runner == 0:
        os.close(ctl_fd)
        job_fd, out_fd, err_fd, report_fd = fds[:4]
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        run_job(job_fd, report_fd=report_fd, fresh_mounts=fresh_mounts, cgroup_fds=fds[4:])
        os._exit(1)
    for fd in fds:
        os.close(fd)
    return runner


def main():
    if sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), [int(fd) for fd in sys.argv[3].split(",") if fd] if len(sys.argv) > 3 else [])
    else:
        run_job(int(sys.argv[1]))


if __name__ == "__main__":
    main()
