"""What the small real-client scripts share: one PASS/FAIL line per check,
and a watchdog that aborts a script that hangs."""

import os
import threading

FAILED = []


def start_watchdog(seconds):
    """Aborts the process (exit 3) if it is still running after `seconds`."""

    def abort():
        print("FAIL watchdog: still running after %.0f s, aborting" % seconds, flush=True)
        os._exit(3)

    dog = threading.Timer(seconds, abort)
    dog.daemon = True
    dog.start()


def check(name, ok, detail=""):
    """Prints one check's line; a failing one is remembered in FAILED."""
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + str(detail)) if detail and not ok else ""), flush=True)
    if not ok:
        FAILED.append(name)
