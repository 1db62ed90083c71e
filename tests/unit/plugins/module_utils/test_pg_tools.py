# -*- coding: utf-8 -*-
"""Finding the PostgreSQL client tools, on a real temporary /usr/lib/postgresql-like tree."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.dbstack.ha.plugins.module_utils.pg_tools import (
    ToolError,
    ToolVersion,
    client_major,
    find_pg_tool,
    installed_majors,
)


def tool(path, text="#!/bin/sh\necho 'pg_dump (PostgreSQL) 15.20'\n", mode=0o755):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def root(tmp_path):
    """/usr/lib/postgresql with 13 and 16 holding pg_dump, 15 holding pg_ctl only, 14 a non-executable pg_dump."""
    base = tmp_path / "postgresql"
    for major in (13, 16):
        tool(str(base / str(major) / "bin" / "pg_dump"))
    tool(str(base / "15" / "bin" / "pg_ctl"))
    tool(str(base / "14" / "bin" / "pg_dump"), mode=0o644)
    (base / "common").mkdir()
    return str(base)


def no_path(_name):
    return None


def test_installed_majors_newest_first(root, tmp_path):
    assert installed_majors(root) == [16, 15, 14, 13]
    assert installed_majors(str(tmp_path / "nothing")) == []


def test_the_servers_major_first(root):
    assert find_pg_tool("pg_dump", 13, root=root, which=no_path) == os.path.join(root, "13", "bin", "pg_dump")
    assert find_pg_tool("pg_ctl", 15, root=root, which=no_path, newer_ok=False) == \
        os.path.join(root, "15", "bin", "pg_ctl")


def test_a_newer_folder_when_allowed(root):
    # 15 has no pg_dump and 14's is not executable: pg_dump 16 can dump a 15 server.
    assert find_pg_tool("pg_dump", 15, root=root, which=no_path) == os.path.join(root, "16", "bin", "pg_dump")
    assert find_pg_tool("pg_dump", None, root=root, which=no_path) == os.path.join(root, "16", "bin", "pg_dump")


def test_an_exact_major_falls_back_to_the_path_only(root):
    assert find_pg_tool("pg_dump", 15, root=root, newer_ok=False, which=lambda n: "/opt/pg/bin/" + n) == \
        "/opt/pg/bin/pg_dump"
    with pytest.raises(ToolError) as err:
        find_pg_tool("pg_dump", 15, root=root, newer_ok=False, which=no_path)
    assert "pg_dump not found (looked in %s/15/bin and the PATH)" % root in str(err.value)
    assert "postgresql-client-15" in str(err.value) and "pg_bin_dir" in str(err.value)


def test_nothing_new_enough(root):
    with pytest.raises(ToolError, match="looked in .*/\\*/bin and the PATH.*postgresql-client-17"):
        find_pg_tool("pg_dump", 17, root=root, which=no_path)


def test_the_users_folder_or_path_wins(root, tmp_path):
    mine = tool(str(tmp_path / "mine" / "pg_dump"))
    assert find_pg_tool("pg_dump", 16, bin_dir=str(tmp_path / "mine"), root=root) == mine
    assert find_pg_tool("pg_ctl", 15, path=mine, root=root, option="pg_ctl_path") == mine
    with pytest.raises(ToolError, match="pg_bin_dir=%s has no executable pg_restore" % (tmp_path / "mine")):
        find_pg_tool("pg_restore", 16, bin_dir=str(tmp_path / "mine"), root=root)
    with pytest.raises(ToolError, match="pg_ctl_path=%s is not an executable file" % (tmp_path / "mine")):
        find_pg_tool("pg_ctl", 15, path=str(tmp_path / "mine"), root=root, option="pg_ctl_path")
    with pytest.raises(ToolError, match="pg_bin_dir=%s has no executable pg_dump" % os.path.join(root, "14", "bin")):
        find_pg_tool("pg_dump", 14, bin_dir=os.path.join(root, "14", "bin"), root=root)


def test_tool_version_runs_in_the_background(tmp_path):
    path = tool(str(tmp_path / "pg_dump"), "#!/bin/sh\nsleep 0.2\necho 'pg_dump (PostgreSQL) 14.9 (Debian 14.9-1)'\n")
    version = ToolVersion(path)
    assert version.result() == ((14, 9), "pg_dump (PostgreSQL) 14.9 (Debian 14.9-1)")


def test_tool_version_failures(tmp_path):
    broken = tool(str(tmp_path / "broken"), "#!/bin/sh\necho 'libpq.so.5: cannot open' >&2\nexit 127\n")
    with pytest.raises(ToolError, match="broken --version failed \\(rc=127\\): libpq.so.5: cannot open"):
        ToolVersion(broken).result()
    with pytest.raises(ToolError, match="missing --version cannot run"):
        ToolVersion(str(tmp_path / "missing")).result()
    silent = ToolVersion(tool(str(tmp_path / "silent"), "#!/bin/sh\nsleep 5\n"))
    silent.close()  # never waited for: killed, not left behind
    assert silent._proc.returncode is not None


def test_client_major():
    assert client_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)") == (15, 20)
    assert client_major("pg_dump (PostgreSQL) 9.6.24") == (9, 6)
    assert client_major("pg_restore (PostgreSQL) 17devel") == (17, 0)
    assert client_major("pg_restore (PostgreSQL) 17beta1") == (17, 0)
    assert client_major("something else") is None
