# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's operations lock: one JSON file per host, with an owner, a token and an expiry.

The decision (take, renew, release, refuse) is the pure function decide(); the file is read and written
under an exclusive flock of a guard file beside it, and replaced atomically (temporary file, fsync, rename).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import time

from ansible_collections.dbstack.ha.plugins.module_utils.files import replace_file

FIELDS = ("owner", "operation", "token", "acquired_at", "expires_at")


class LockError(Exception):
    pass


def _when(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def describe(lock, now):
    """'OWNER (OPERATION) since T, expires in N s' for messages."""
    left = int(round(float(lock.get("expires_at", 0)) - now))
    return "%s (%s) since %s, %s" % (
        lock.get("owner", "?"), lock.get("operation", "?"), _when(float(lock.get("acquired_at", 0))),
        "expires in %d s" % left if left > 0 else "expired %d s ago" % -left)


def decide(current, now, state, token, owner=None, operation=None, ttl=None, force=False):
    """What to do with the lock: returns dict(action, lock, problem, warning).

    action: acquire, renew, take_over (expired, or force), release, none, refuse. lock is the content to write
    (acquire / renew / take_over), None to remove it (release), or the current one (none / refuse).
    """
    held = current if isinstance(current, dict) and current.get("token") else None
    expired = held is not None and float(held.get("expires_at", 0)) <= now
    result = dict(action="none", lock=held, problem="", warning="")

    if state == "present":
        fresh = dict(owner=owner, operation=operation, token=token, acquired_at=now, expires_at=now + ttl)
        if held is None:
            result.update(action="acquire", lock=fresh)
        elif held["token"] == token:
            fresh["acquired_at"] = held.get("acquired_at", now)
            result.update(action="renew", lock=fresh)
        elif expired or force:
            result.update(action="take_over", lock=fresh, warning="took over the lock of %s%s" % (
                describe(held, now), "" if expired else " (force)"))
        else:
            result.update(action="refuse", problem="the stack's operations lock is held by %s: wait for it to end, "
                                                   "or release it (state=absent, force=true) if that operation is "
                                                   "gone" % describe(held, now))
        return result

    if held is None:
        return result
    if held["token"] == token or force:
        if held["token"] != token:
            result["warning"] = "released the lock of %s (force)" % describe(held, now)
        result.update(action="release", lock=None)
    elif not expired:
        result.update(action="refuse", problem="not releasing the operations lock: it is held by %s, not by this "
                                               "token; force=true releases it anyway" % describe(held, now))
    return result


def read_lock(path):
    """The lock file's content, None when there is none; LockError when it cannot be read as a lock."""
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            return None
        raise LockError("cannot read %s: %s" % (path, exc))
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise LockError("%s is not a dbstack operations lock (not JSON): move it away and run again" % path)
    if not isinstance(data, dict):
        raise LockError("%s is not a dbstack operations lock: move it away and run again" % path)
    return data


def write_lock(path, lock, mode=0o640):
    """Replace the lock file atomically (or remove it when lock is None)."""
    if lock is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    replace_file(path, json.dumps(dict((k, lock[k]) for k in FIELDS), sort_keys=True) + "\n", mode)


class Guard(object):
    """An exclusive flock of PATH.guard for the read-decide-write of the lock (waits at most timeout seconds)."""

    def __init__(self, path, timeout=10.0, clock=time.monotonic, sleep=time.sleep):
        self.path = path + ".guard"
        self.timeout, self.clock, self.sleep = timeout, clock, sleep
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = self.clock() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError):
                if self.clock() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    raise LockError("%s stayed locked by another process for %d s" % (self.path, self.timeout))
                self.sleep(0.05)

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False
