"""The trusted runner that training/sandbox.py starts inside the sandbox: ``python -I -S -B harness.py <fd>``.

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


def main():
    write, getpid, exit_, close = os.write, os.getpid, os._exit, os.close
    run_exec, run_compile = exec, compile
    settrace, setprofile = sys.settrace, sys.setprofile

    infd = int(sys.argv[1])
    job = marshal.loads(os.pread(infd, os.fstat(infd).st_size, 0))
    close(infd)
    sys.argv = ["solution"]

    if job["shim"]:
        # A trusted parent for the program. Under bubblewrap it is pid 1 of the namespace (bwrap --as-pid-1):
        # it reaps orphans, and when it exits the kernel kills whatever the program left, while bwrap itself
        # reaps it (bwrap's own pid-1 reaper outlives bwrap and piles up as zombies under a container's init).
        # Without namespaces it stands between the program and the caller, so kill(getppid()) hits the shim.
        child = os.fork()
        if child:
            close(job["report_fd"])
            while True:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    exit_(1)
                if pid == child:
                    code = os.waitstatus_to_exitcode(status)
                    exit_(128 - code if code < 0 else code)

    import resource

    for name, soft, hard in job["limits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    uid = job["uid"]
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if job["cwd"]:
        os.chdir(job["cwd"])

    report_fd, nonce, me = job["report_fd"], job["nonce"], getpid()

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


if __name__ == "__main__":
    main()
