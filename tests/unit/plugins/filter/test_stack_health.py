# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.dbstack.ha.plugins.filter.stack_health import parse_files, stack_health

NOW = 1_800_000_000
GROUPS = dict(postgres=["pg1", "pg2"], postgres_primary=["pg1"], pgbouncer=["pgb1"], redis=["r1", "r2"],
              sentinel=["r1", "r2", "mon1"], monitoring=["mon1"])
LIMITS = dict(lag_bytes=10 * 1024 * 1024, slot_retained_bytes=1024 ** 3, pool_wait_seconds=5,
              backup_max_age_seconds=26 * 3600, restore_test_max_age_seconds=8 * 86400, cert_warn_days=30,
              cert_fail_days=7, disk_warn_percent=80, disk_fail_percent=90, alert_fail_severities=["critical"],
              databases=["appdb"], initial_primary="pg1", initial_master="r1", quorum=2, master_name="dbstack",
              runbook="docs/operations.md")


def pg(in_recovery, replication=(), slots=()):
    return dict(changed=False, query_result=[dict(in_recovery=in_recovery, data_directory="/var/lib/pg",
                                                  replication=list(replication), slots=list(slots))])


def files(extra=""):
    return ("now %d\ndisk /var/lib/pg 1000 300 700 /\ncert /etc/pgbouncer/tls/server.crt %d\n"
            'metric dbstack_backup_last_success_timestamp_seconds{database="appdb"} %d\n'
            'metric dbstack_restore_test_last_success_timestamp_seconds{database="appdb"} %d\n%s'
            % (NOW, NOW + 365 * 86400, NOW - 3600, NOW - 86400, extra))


def sentinel_info(address="10.0.0.1:6379", status="ok"):
    return dict(info={"master0": {"name": "dbstack", "status": status, "address": address, "slaves": 1,
                                  "sentinels": 3}})


def healthy():
    streaming = dict(application_name="pg2", state="streaming", sync_state="async", lag_bytes=0,
                     replay_lag_seconds=0.001)
    slot = dict(slot_name="pg2", active=True, retained_bytes=16 * 1024 * 1024, wal_status="reserved")
    pools = {"appdb/app": dict(database="appdb", user="app", cl_active=3, cl_waiting=0, sv_active=1, sv_idle=1,
                               maxwait_seconds=0.0)}
    targets = dict(json=dict(data=dict(activeTargets=[
        dict(health="up", labels=dict(job="node", instance="pg1:9100"))])))
    alerts = dict(json=dict(data=dict(alerts=[])))
    return [
        dict(host="pg1", reachable=True, slot="pg1", postgres=pg(False, [streaming], [slot]), files=files()),
        dict(host="pg2", reachable=True, slot="pg2", postgres=pg(True), files=files()),
        dict(host="pgb1", reachable=True, pgbouncer=dict(version="PgBouncer 1.18.0", pools=pools,
                                                         expected_fd_use=1100, fd_limit=16384, fd_open=20),
             files=files()),
        dict(host="r1", reachable=True, address="10.0.0.1", port=6379,
             redis=dict(info=dict(role="master", redis_version="7.0.15")), sentinel=sentinel_info()),
        dict(host="r2", reachable=True, address="10.0.0.2", port=6379,
             redis=dict(info=dict(role="slave", master_host="10.0.0.1", master_port=6379, master_link_status="up",
                                  redis_version="7.0.15")), sentinel=sentinel_info()),
        dict(host="mon1", reachable=True, sentinel=sentinel_info(), prometheus=dict(targets=targets, alerts=alerts),
             files=files()),
    ]


def judge(hosts, **limits):
    merged = dict(LIMITS, **limits)
    return stack_health(hosts, GROUPS, merged)


def host(hosts, name):
    return [h for h in hosts if h["host"] == name][0]


def failed(report):
    return sorted((c["check"], c["target"]) for c in report["checks"] if c["status"] == "fail")


def status(report, check, target):
    return [c for c in report["checks"] if c["check"] == check and c["target"] == target][0]["status"]


def test_a_healthy_stack_passes_every_check():
    report = judge(healthy())
    assert report["ok"] is True, report["failed"]
    assert report["failed"] == [] and report["warnings"] == []
    assert report["primary"] == "pg1" and report["redis_master"] == "r1"
    checks = set(c["check"] for c in report["checks"])
    assert checks == {"host_reachable", "postgres_up", "postgres_primary", "postgres_standby_streaming",
                      "postgres_replication_lag", "postgres_slot", "pgbouncer_up", "pgbouncer_waiting",
                      "pgbouncer_fd", "redis_up", "redis_master", "redis_replica", "sentinel_agreement",
                      "prometheus_up", "prometheus_targets", "prometheus_alerts", "backup_age", "restore_test_age",
                      "tls_expiry", "disk_space"}
    assert report["table"][-1].startswith("%d checks: %d ok, 0 warn, 0 fail" % (len(report["checks"]),
                                                                                len(report["checks"])))
    assert report["checks"][0]["runbook"] == "docs/operations.md#health-host-reachable"


def test_two_primaries_fail_as_split_brain():
    hosts = healthy()
    host(hosts, "pg2")["postgres"] = pg(False)
    report = judge(hosts)
    assert ("postgres_primary", "cluster") in failed(report)
    assert "split brain" in [c for c in report["checks"] if c["check"] == "postgres_primary"][0]["detail"]
    assert report["primary"] == ""


def test_a_standby_that_does_not_stream_fails_and_its_lag_is_judged():
    hosts = healthy()
    host(hosts, "pg1")["postgres"] = pg(False, [], [dict(slot_name="pg2", active=False, retained_bytes=2 * 1024 ** 3)])
    report = judge(hosts)
    assert ("postgres_standby_streaming", "pg2") in failed(report)
    assert ("postgres_slot", "pg1/pg2") in failed(report)

    hosts = healthy()
    host(hosts, "pg1")["postgres"]["query_result"][0]["replication"][0]["lag_bytes"] = 11 * 1024 * 1024
    report = judge(hosts)
    assert failed(report) == [("postgres_replication_lag", "pg2")]
    assert "11.0 MiB behind (limit 10.0 MiB)" in report["failed"][0]


def test_an_inactive_slot_warns():
    hosts = healthy()
    host(hosts, "pg1")["postgres"]["query_result"][0]["slots"][0]["active"] = False
    report = judge(hosts)
    assert report["ok"] is True and status(report, "postgres_slot", "pg1/pg2") == "warn"


def test_a_stopped_pgbouncer_is_named():
    hosts = healthy()
    # as registered with failed_when: false - 'failed' is off, the answer is missing
    host(hosts, "pgb1")["pgbouncer"] = dict(failed=False, changed=False,
                                            msg="could not connect to the PgBouncer admin console\nmore")
    report = judge(hosts)
    assert failed(report) == [("pgbouncer_up", "pgb1")]
    assert report["failed"][0].startswith("pgbouncer_up pgb1: the admin console did not answer: could not connect")
    assert report["failed"][0].endswith("(runbook: docs/operations.md#health-pgbouncer-up)")


def test_pgbouncer_clients_waiting_too_long_and_descriptors():
    hosts = healthy()
    pools = host(hosts, "pgb1")["pgbouncer"]["pools"]
    pools["appdb/app"].update(cl_waiting=7, maxwait_seconds=4.9)
    assert judge(hosts)["ok"] is True
    pools["appdb/app"].update(maxwait_seconds=5.0)
    host(hosts, "pgb1")["pgbouncer"].update(expected_fd_use=20000)
    assert failed(judge(hosts)) == [("pgbouncer_fd", "pgb1"), ("pgbouncer_waiting", "pgb1")]
    host(hosts, "pgb1")["pgbouncer"].update(fd_limit=None)
    assert status(judge(hosts), "pgbouncer_fd", "pgb1") == "warn"


def test_redis_replica_and_sentinels_that_disagree():
    hosts = healthy()
    host(hosts, "r2")["redis"]["info"]["master_link_status"] = "down"
    host(hosts, "mon1")["sentinel"] = sentinel_info("10.0.0.2:6379")
    report = judge(hosts)
    assert failed(report) == [("redis_replica", "r2"), ("sentinel_agreement", "mon1")]


def test_sentinels_without_a_quorum_leave_no_master():
    hosts = healthy()
    host(hosts, "r1")["sentinel"] = sentinel_info("10.0.0.2:6379")
    host(hosts, "r2")["sentinel"] = dict(failed=False, msg="connection refused")
    host(hosts, "mon1")["sentinel"] = sentinel_info("10.0.0.1:6379", status="odown")
    report = judge(hosts)
    assert ("redis_master", "redis") in failed(report)
    assert ("sentinel_agreement", "r2") in failed(report)
    assert report["redis_master"] == ""


def test_targets_down_and_alerts():
    hosts = healthy()
    prom = host(hosts, "mon1")["prometheus"]
    prom["targets"]["json"]["data"]["activeTargets"].append(
        dict(health="down", labels=dict(job="pgbouncer", instance="pgb1:9127"), lastError="connection refused"))
    prom["alerts"]["json"]["data"]["alerts"] = [
        dict(state="firing", labels=dict(alertname="Minor", severity="warning")),
        dict(state="pending", labels=dict(alertname="Soon", severity="critical"))]
    report = judge(hosts)
    assert failed(report) == [("prometheus_targets", "mon1")]
    assert "pgbouncer pgb1:9127 (connection refused)" in report["failed"][0]
    assert status(report, "prometheus_alerts", "mon1") == "warn"
    prom["alerts"]["json"]["data"]["alerts"][1]["state"] = "firing"
    assert ("prometheus_alerts", "mon1") in failed(judge(hosts))
    host(hosts, "mon1")["prometheus"] = dict(targets=dict(failed=False, status=-1, msg="Connection refused"),
                                             alerts=dict(failed=False, status=-1, msg="Connection refused"))
    assert ("prometheus_up", "mon1") in failed(judge(hosts))


def test_backup_ages_take_the_newest_on_any_host_and_missing_ones_fail():
    hosts = healthy()
    old = files().replace(str(NOW - 3600), str(NOW - 30 * 3600))
    for name in ("pg1", "pg2", "pgb1", "mon1"):
        host(hosts, name)["files"] = old
    report = judge(hosts)
    assert failed(report) == [("backup_age", "appdb")]
    assert "last backup 1d 6h ago" in report["failed"][0]
    host(hosts, "pg2")["files"] = files()  # a newer one after a failover, on the other node
    assert judge(hosts)["ok"] is True
    report = judge(hosts, databases=["appdb", "other"])
    assert failed(report) == [("backup_age", "other"), ("restore_test_age", "other")]
    assert judge(hosts, databases=["other"], backup_max_age_seconds=0,
                 restore_test_max_age_seconds=0)["ok"] is True


def test_certificates_and_disks():
    hosts = healthy()
    host(hosts, "pgb1")["files"] = files("cert /etc/x.crt %d\ncert /etc/y.crt unreadable\ndisk /data 100 95 5 /data\n"
                                         "disk /b 100 85 15 /b\n" % (NOW + 10 * 86400))
    report = judge(hosts)
    assert failed(report) == [("disk_space", "pgb1:/data"), ("tls_expiry", "pgb1:/etc/y.crt")]
    assert status(report, "tls_expiry", "pgb1:/etc/x.crt") == "warn"
    assert status(report, "disk_space", "pgb1:/b") == "warn"


def test_an_unreachable_host_is_reported_not_fatal():
    hosts = healthy()
    host(hosts, "pg2").update(reachable=False, error="Failed to connect", postgres=None, files=None)
    report = judge(hosts)
    assert ("host_reachable", "pg2") in failed(report) and ("postgres_up", "pg2") in failed(report)
    assert report["primary"] == "pg1"


def test_parse_files_keeps_going_past_a_bad_line():
    read = parse_files("now 5\ndisk /x notanumber\nmetric junk\ncert /c 10\n")
    assert read["now"] == 5 and read["certs"] == [dict(path="/c", not_after=10.0)]
    assert read["errors"] == ["unreadable line: disk /x notanumber"]


def test_input_is_not_modified():
    hosts = healthy()
    before = copy.deepcopy(hosts)
    judge(hosts)
    assert hosts == before


def test_a_postgres_node_that_did_not_answer():
    hosts = healthy()
    host(hosts, "pg1")["postgres"] = dict(failed=False, msg="unable to connect to database: connection refused")
    report = judge(hosts)
    assert ("postgres_up", "pg1") in failed(report) and ("postgres_primary", "cluster") in failed(report)
    assert "connection refused" in [c for c in report["checks"] if c["target"] == "pg1"
                                    and c["check"] == "postgres_up"][0]["detail"]


def test_synchronous_replication_is_judged_only_when_configured():
    hosts = healthy()
    report = judge(hosts)
    assert not [c for c in report["checks"] if c["check"] == "postgres_sync"]

    row = host(hosts, "pg1")["postgres"]["query_result"][0]
    host(hosts, "pg1")["sync_mode"] = "first"
    row["sync_names"] = 'FIRST 1 ("pg1", "pg2")'
    row["replication"][0]["sync_state"] = "sync"
    report = judge(hosts)
    assert status(report, "postgres_sync", "pg1") == "ok" and report["ok"]

    row["replication"][0]["sync_state"] = "async"  # named, but none is synchronous: commits hang
    report = judge(hosts)
    assert failed(report) == [("postgres_sync", "pg1")]
    assert "every commit waits" in report["failed"][0]

    row["sync_names"] = ""  # relaxed by a switchover or failover, not restored yet
    report = judge(hosts)
    assert status(report, "postgres_sync", "pg1") == "warn" and report["ok"]
    assert "relaxed" in report["warnings"][0]

    host(hosts, "pg1")["sync_mode"] = "none"
    row["sync_names"] = 'ANY 1 ("pg1", "pg2")'  # set by hand though not configured: still judged
    row["replication"][0]["sync_state"] = "quorum"
    assert status(judge(hosts), "postgres_sync", "pg1") == "ok"
