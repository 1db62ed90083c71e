# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durable file writes shared by the modules (PgBouncer's configuration, the operations lock, the backup folder)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


def fsync_path(path):
    """fsync one file or directory (a directory: so that renames and new entries in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path, text, mode, uid=None, gid=None):
    """Replace (or create) path with text (str, or bytes written as they are): a temporary file in the same directory,
    fsync, rename, fsync the directory.

    Readers see the old or the new content, never a part; on any failure the original is untouched and the
    temporary file is removed. The new file gets mode, and uid/gid when given and not this process's.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if uid is not None and (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), uid, gid)
            os.fsync(handle.fileno())
        os.rename(tmp, path)
        tmp = None
        fsync_path(directory)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
