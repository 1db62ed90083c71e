# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the PostgreSQL client tools (pg_dump, pg_restore, pg_ctl, ...): one lookup for every module.

Order: the path the user gave (an option naming the tool itself or its folder);
else Debian's /usr/lib/postgresql/MAJOR/bin for the server's major version; else,
when a newer tool is acceptable (pg_dump and pg_restore read older servers and
archives), the newest /usr/lib/postgresql/N/bin holding it with N >= MAJOR; else
the PATH. A miss says where it looked and how to fix it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess

DEBIAN_ROOT = "/usr/lib/postgresql"
_CLIENT_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class ToolError(Exception):
    """A tool that cannot be found or run; the message names the option or package that fixes it."""


def client_major(version_output):
    """'pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)' -> (15, 20); None when unreadable."""
    match = _CLIENT_VERSION.search(version_output or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def installed_majors(root=DEBIAN_ROOT):
    """Major versions with a folder under root (Debian's /usr/lib/postgresql), newest first."""
    try:
        return sorted((int(v) for v in os.listdir(root) if v.isdigit()), reverse=True)
    except OSError:
        return []


def is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_pg_tool(name, major=None, path=None, bin_dir=None, newer_ok=True, which=None, root=DEBIAN_ROOT,
                 option="pg_bin_dir"):
    """Full path of PostgreSQL client tool `name`; raises ToolError when there is none.

    path: the tool itself, as the user gave it (an option such as pg_ctl_path); it must be executable.
    bin_dir: a folder the user gave (an option such as pg_bin_dir); it must hold an executable `name`.
    major: the server's (or archive's) major version; root/MAJOR/bin comes first.
    newer_ok: also take the newest root/N/bin with N >= major (pg_dump, pg_restore); pg_ctl must match.
    which: a PATH lookup (AnsibleModule.get_bin_path); None skips the PATH.
    option: the option to name in the message about bin_dir / path.
    """
    if path:
        if not is_executable(path):
            raise ToolError("%s=%s is not an executable file: point it at %s" % (option, path, name))
        return path
    if bin_dir:
        candidate = os.path.join(bin_dir, name)
        if not is_executable(candidate):
            raise ToolError("%s=%s has no executable %s" % (option, bin_dir, name))
        return candidate
    candidates = []
    if major:
        candidates.append(os.path.join(root, str(major), "bin", name))
    if newer_ok or not major:
        candidates.extend(os.path.join(root, str(v), "bin", name) for v in installed_majors(root)
                          if not major or v >= major)
    for candidate in candidates:
        if is_executable(candidate):
            return candidate
    found = which(name) if which is not None else None
    if found:
        return found
    wanted = ("%s/%s/bin" % (root, major)) if major and not newer_ok else ("%s/*/bin" % root)
    raise ToolError("%s not found (looked in %s and the PATH): install the PostgreSQL %s client tools (Debian: "
                    "postgresql-client-%s) or set %s" % (name, wanted, major or "", major or "MAJOR", option))


class ToolVersion(object):
    """`TOOL --version`, started at once and read later, so it runs while the caller does something else."""

    def __init__(self, path):
        self.path = path
        self._proc = None
        self._error = None
        try:
            self._proc = subprocess.Popen([path, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            self._error = exc.strerror or str(exc)

    def result(self):
        """((major, minor), text) of the tool; raises ToolError when it does not run or answer."""
        if self._error is not None:
            raise ToolError("%s --version cannot run: %s" % (self.path, self._error))
        out, err = self._proc.communicate()
        out = out.decode("utf-8", "replace")
        if self._proc.returncode != 0:
            raise ToolError("%s --version failed (rc=%d): %s" % (
                self.path, self._proc.returncode, (err.decode("utf-8", "replace") or out).strip()))
        return client_major(out), out.strip()

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
