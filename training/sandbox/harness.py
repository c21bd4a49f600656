"""The trusted runner that training/sandbox/ starts inside the sandbox: ``python -I -S -B harness.py <fd>``.

It reads its job from the inherited file descriptor ``<fd>`` (a marshal'd dict written by the host, closed
before any untrusted code runs), applies the resource limits, drops to the unprivileged uid when started as
root, runs the program, then the test chunks one by one, and only then writes a one-line report carrying the
per-run nonce to the report pipe. The host trusts nothing else: not the exit status, not stdout.

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


def _enter(infd, report_fd, fresh_mounts):
    """Read the job, then set the run up (shim, namespaces, limits, uid, directory): all before the program
    runs, so module-level code is safe here. Returns the job and the report fd."""
    job = marshal.loads(os.pread(infd, os.fstat(infd).st_size, 0))
    os.close(infd)
    sys.argv = ["solution"]
    if report_fd is None:
        report_fd = job["report_fd"]

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
    return job, report_fd


def run_job(infd, report_fd=None, fresh_mounts=None):
    """Run one job read from ``infd``; never returns. Under a warm sandbox, ``fresh_mounts`` gives the run its
    own mount and IPC namespaces with a new /tmp and /dev/shm first, and the report pipe arrives as an fd.

    One function of ~64 lines on purpose: the test loop and the report writer must stay local names, bound
    before the untrusted program runs; a module-level helper could be replaced by that program to forge a pass.
    """
    write, getpid, exit_ = os.write, os.getpid, os._exit
    run_exec, run_compile = exec, compile
    settrace, setprofile = sys.settrace, sys.setprofile
    job, report_fd = _enter(infd, report_fd, fresh_mounts)

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

    program, tests = job["program"], job["tests"]
    del job
    program_lines = program.splitlines(True)
    scope = {"__name__": "solution", "__builtins__": __builtins__}

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
    flush()
    report(status, b"tests", ran)
    exit_(0 if status == b"passed" else 1)


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


def serve(ctl_fd):
    """A warm sandbox: pid 1 of a bwrap namespace, root, never running untrusted code itself.

    For each ``run <uid>`` message on the control socket, carrying the job, stdout, stderr and report fds, it
    forks a runner (fresh namespaces, then ``run_job``), waits for it, kills every process left with the run's
    uid, reaps them all, and answers ``done <exit code>``. The host never reuses a sandbox after a timeout.
    """
    import signal
    import socket

    ctl = socket.socket(fileno=ctl_fd)
    fresh_mounts = _namespace_tools()
    probe = os.fork()
    if probe == 0:  # can a runner get its namespaces and drop to a uid here?
        try:
            fresh_mounts(1 << 20)
            _drop_to(65534)
            os._exit(0)
        except BaseException:  # noqa: B036
            os._exit(1)
    if _reap(probe) != 0:
        ctl.send(b"broken")
        os._exit(1)
    ctl.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(ctl, 64, 4)
        except OSError:
            os._exit(1)
        if not message or len(fds) != 4 or not message.startswith(b"run "):
            os._exit(0 if not message else 1)
        uid = int(message[4:])
        runner = os.fork()
        if runner == 0:
            os.close(ctl_fd)
            job_fd, out_fd, err_fd, report_fd = fds
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            os.close(out_fd)
            os.close(err_fd)
            run_job(job_fd, report_fd=report_fd, fresh_mounts=fresh_mounts)
            os._exit(1)
        for fd in fds:
            os.close(fd)
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


def main():
    if sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        run_job(int(sys.argv[1]))


if __name__ == "__main__":
    main()
