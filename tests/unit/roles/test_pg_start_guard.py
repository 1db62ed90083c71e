# -*- coding: utf-8 -*-
"""The postgres_ha start guard's decision (roles/postgres_ha/files/pg_start_guard.py) and its file checks."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location(
    "pg_start_guard", os.path.join(HERE, "..", "..", "..", "roles", "postgres_ha", "files", "pg_start_guard.py"))
guard = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(guard)


def peer(host, primary, error=None):
    return dict(host=host, port=5432, primary=primary, error=error)


def test_a_standby_or_no_cluster_always_starts():
    assert guard.decide(True, True, None, [peer("pg2", True)])[0] is True
    assert guard.decide(False, False, "fenced", [peer("pg2", True)])[0] is True


def test_a_would_be_primary_is_refused_while_a_peer_is_primary():
    may, reason = guard.decide(False, True, None, [peer("pg2", True), peer("pg3", False)])
    assert may is False and reason.startswith("pg2:5432 already runs as the primary")
    assert "postgres_ha_rejoin=true" in reason


def test_a_fence_marker_refuses_even_when_no_peer_answers():
    may, reason = guard.decide(False, True, "fenced by failover.yml at 2026-12-01T12:00:00Z", [])
    assert may is False and "this node was fenced (fenced by failover.yml" in reason


def test_no_answer_is_not_a_primary():
    may, reason = guard.decide(False, True, None, [peer("pg2", None, "timeout"), peer("pg3", False)])
    assert may is True and reason == "no other primary answers (no answer from pg2:5432)"


def test_main_reads_the_data_directory_and_the_marker(tmp_path, capsys):
    data = tmp_path / "main"
    data.mkdir()
    marker = tmp_path / "fenced"
    config = tmp_path / "guard.json"
    config.write_text(json.dumps(dict(data_directory=str(data), fence_marker=str(marker), passfile="/nonexistent",
                                      user="replicator", peers=[])))
    assert guard.main(["--config", str(config)]) == 0  # no cluster
    (data / "PG_VERSION").write_text("15\n")
    assert guard.main(["--config", str(config)]) == 0  # a primary, no peer: starts
    marker.write_text("fenced by failover.yml\n")
    assert guard.main(["--config", str(config)]) == 1
    assert "REFUSED: this node was fenced (fenced by failover.yml)" in capsys.readouterr().err
    (data / "standby.signal").write_text("")
    assert guard.main(["--config", str(config)]) == 0  # rejoined as a standby


def test_the_watchdog_stops_a_primary_only_when_a_peer_is_primary_on_a_higher_timeline():
    demote, reason = guard.decide_watch(1, [dict(peer("pg2", True), timeline=2), peer("pg3", None, "timeout")])
    assert demote is True and reason.startswith("pg2:5432 runs as the primary on timeline 2, after this node's timeline 1")
    demote, reason = guard.decide_watch(3, [dict(peer("pg2", True), timeline=2)])
    assert demote is False and "pg2:5432 also runs as a primary" in reason
    assert guard.decide_watch(2, [dict(peer("pg2", False), timeline=None), peer("pg3", None)]) == (False, "")
