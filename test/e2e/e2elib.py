"""Shared pieces of Tiercel's end-to-end client checks.

A check is a plain function. It raises CheckFailed (through expect and
expect_eq) with a message that says what was expected and what came back.
Runner runs the checks of one script, keeps going after a failure so one
broken API does not hide the state of the others, and turns the outcome
into the script's exit status.

Nothing here imports a Kafka client, so every script can load it before it
touches sys.path (see load_package_from_system).
"""

import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


class CheckFailed(Exception):
    """A check found something other than what it expected."""


def expect(cond, msg):
    """Fails the running check with msg unless cond holds."""
    if not cond:
        raise CheckFailed(msg)


def expect_eq(what, expected, got):
    """Fails the running check unless got == expected.

    For lists it names the first index that differs and the lengths, which
    is what one needs to read a mismatch in thousands of records.
    """
    if expected == got:
        return
    if isinstance(expected, list) and isinstance(got, list):
        for i, (e, g) in enumerate(zip(expected, got)):
            if e != g:
                raise CheckFailed(
                    "%s: first difference at index %d\n      expected: %r\n      got:      %r\n"
                    "      (expected %d items, got %d)" % (what, i, e, g, len(expected), len(got)))
        raise CheckFailed(
            "%s: expected %d items, got %d; first extra or missing item: %r"
            % (what, len(expected), len(got),
               (got[len(expected)] if len(got) > len(expected) else expected[len(got)])))
    raise CheckFailed("%s:\n      expected: %r\n      got:      %r" % (what, expected, got))


def run_id():
    """A suffix that makes topic names unique to this run."""
    return os.environ.get("E2E_RUN_ID") or "%d-%d" % (os.getpid(), int(time.time()))


def node_id():
    """The broker id the broker under test was started with."""
    return int(os.environ.get("E2E_NODE_ID", "1"))


def bootstrap_from_argv(prog):
    """Returns HOST:PORT from the command line, or exits with usage."""
    if len(sys.argv) != 2 or ":" not in sys.argv[1]:
        sys.stderr.write("usage: %s HOST:PORT\n" % prog)
        sys.exit(2)
    return sys.argv[1]


def load_package_from_system(name):
    """Imports the installed package `name`, not a file of the same name here.

    This directory holds confluent_kafka.py, which would shadow the real
    confluent_kafka package for any script started from here, because
    Python puts a script's directory first on sys.path.
    """
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    try:
        return __import__(name)
    finally:
        sys.path[:] = saved


def wait_until(what, timeout_s, fn, interval_s=0.2):
    """Calls fn until it returns a true value, at most timeout_s seconds.

    Returns that value, or fails the check naming what was awaited and the
    last value fn returned.
    """
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise CheckFailed("timed out after %ss waiting for %s (last: %r)" % (timeout_s, what, last))
        time.sleep(interval_s)


class Runner:
    """Runs one script's checks and reports them."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = []

    def run(self, name, fn, *args):
        """Runs fn(*args) as the check `name`.

        Returns (True, result) or (False, None). A check whose input came
        from a failed check is reported as failed too, not silently skipped:
        pass None for such an input and it is caught here.
        """
        if any(a is None for a in args):
            self._fail(name, "not run: a check it depends on failed")
            return False, None
        start = time.monotonic()
        print("--- %s: %s" % (self.suite, name), flush=True)
        try:
            result = fn(*args)
        except CheckFailed as e:
            self._fail(name, str(e))
            return False, None
        except Exception:  # a client error is a failure of this check too
            self._fail(name, "unexpected exception:\n" + traceback.format_exc())
            return False, None
        self.passed += 1
        print("    ok   %s (%.1fs)" % (name, time.monotonic() - start), flush=True)
        return True, result

    def _fail(self, name, msg):
        self.failed.append(name)
        print("    FAIL %s: %s" % (name, msg), flush=True)

    def finish(self):
        """Prints the summary and returns the process exit status."""
        if self.failed:
            print("%s: failed checks: %s" % (self.suite, ", ".join(self.failed)), flush=True)
        print("%s: %d passed, %d failed" % (self.suite, self.passed, len(self.failed)), flush=True)
        return 1 if self.failed else 0
