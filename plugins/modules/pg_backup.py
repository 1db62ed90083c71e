# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_backup
short_description: Logical PostgreSQL backups with pg_dump - take, verify, prune and restore them
version_added: 0.1.0
description:
  - V(present) takes a backup of O(database) with C(pg_dump) in custom format (C(-Fc)) or directory format with
    parallel jobs (C(-Fd -j N)) under O(dest), unless the newest backup is younger than O(max_age), and then applies
    the retention rules O(keep) and O(keep_days).
  - The dump is written under a hidden temporary name and renamed to C(DATABASE-YYYYmmddTHHMMSSZ.dump) (or C(.dir))
    only when C(pg_dump) succeeded; its manifest C(NAME.manifest.json) (database, server and client versions, size,
    sha256, duration, format, per-table row counts, large objects) is written last, also by rename. A backup without a
    manifest is not complete, so it is never used, counted or pruned.
  - Row counts are taken in the very snapshot C(pg_dump) dumps (C(pg_export_snapshot()) and C(pg_dump --snapshot)),
    so a restore can be checked exactly even while the database is written to.
  - V(verified) recomputes the checksum, reads the archive with C(pg_restore --list) and, with O(restore_test=true),
    restores it into a scratch database, compares per-table row counts and large objects with the manifest, and
    drops the scratch database again.
  - V(restored) restores a backup (O(name), else the newest of O(database)) into O(target_database). The archive is
    verified first; it is restored into a new database which replaces the target only when C(pg_restore) succeeded
    and the row counts match, so a corrupt archive or a failed restore leaves the target as it was.
    An existing target is dropped (its connections terminated) only with O(force=true).
  - The password reaches C(pg_dump) and C(pg_restore) through a private 0600 passfile (C(PGPASSFILE)) that is removed
    afterwards; it is never on a command line and never in the result.
  - The client tools must be at least the server's major version (C(pg_dump)) or the archive's (C(pg_restore)); by
    default the module uses C(/usr/lib/postgresql/MAJOR/bin) matching the server when it exists.
author: dbstack.ha contributors (@dbstack)
extends_documentation_fragment:
  - dbstack.ha.postgres
options:
  state:
    description:
      - V(present) makes sure a recent enough backup exists (takes one unless O(max_age) says the newest is fresh)
        and applies retention.
      - V(verified) checks a backup (O(name), else the newest of O(database)).
      - V(restored) restores a backup into O(target_database).
    type: str
    choices: [present, verified, restored]
    default: present
  database:
    description:
      - The database to back up, or whose backups to verify or restore.
      - Defaults to the database of O(login_db) or of the O(dsn). Not needed with O(name).
    type: str
  dest:
    description:
      - Folder of the backups. Created (mode 0700) when missing with O(state=present).
      - Only files described by a pg_backup manifest are ever read as backups or removed; anything else in the
        folder is left alone.
    type: path
    required: true
  format:
    description:
      - V(custom) is one compressed file (C(pg_dump -Fc)); V(directory) is a folder dumped with O(jobs) parallel
        workers (C(pg_dump -Fd -j)), which is faster for databases with several large tables.
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description:
      - Parallel jobs of C(pg_dump) (directory format only) and of C(pg_restore) (both formats).
    type: int
    default: 1
  compress:
    description:
      - Compression level 0-9 passed to C(pg_dump -Z). The C(pg_dump) default when not set.
    type: int
  max_age:
    description:
      - When the newest backup of O(database) is younger than this, take none (C(changed=false)); retention still
        applies. Seconds, or a number with a unit C(s), C(m), C(h), C(d) or C(w), for example V(26h).
      - Lets a scheduler run the task often and get a recovery point objective of O(max_age) plus the schedule's interval.
    type: str
  keep:
    description:
      - Retention by count - keep the O(keep) newest backups of O(database). With O(keep_days) too, a backup is kept
        when either rule keeps it. The newest backup is never removed.
    type: int
  keep_days:
    description:
      - Retention by age - keep backups of O(database) younger than this many days.
    type: int
  row_counts:
    description:
      - Count the rows of every table in the dump's snapshot (while C(pg_dump) runs) and store them in the manifest,
        for exact checks after a restore.
    type: bool
    default: true
  free_space_factor:
    description:
      - Before dumping, require free space in O(dest) of at least this times C(pg_database_size()). The dump is
        usually far smaller (no indexes, compressed), so V(1.0) is conservative. V(0) disables the check.
    type: float
    default: 1.0
  name:
    description:
      - Name of the backup to verify or restore, as returned in C(backup.name) (for example C(appdb-20261122T031000Z)).
        The newest backup of O(database) when not set.
    type: str
  restore_test:
    description:
      - With O(state=verified), also restore the backup into O(restore_test_database), compare row counts and large
        objects, and drop it again. Skipped in check mode.
    type: bool
    default: false
  restore_test_database:
    description:
      - Scratch database of the restore test. A database of that name is only replaced when a previous restore test
        made it (the module marks it with a comment); otherwise the module refuses.
    type: str
    default: dbstack_restore_test
  target_database:
    description:
      - Database that O(state=restored) creates or replaces. Required with O(state=restored).
    type: str
  target_owner:
    description:
      - Owner of the restored database; objects are created as this role (C(pg_restore --role)), so an application
        role owns its tables again after C(--no-owner). Defaults to the connecting user.
    type: str
  force:
    description:
      - Allow O(state=restored) to replace an existing O(target_database) (its connections are terminated).
    type: bool
    default: false
  maintenance_db:
    description:
      - Database to connect to for creating, renaming and dropping databases during a restore.
    type: str
    default: postgres
  pg_bin_dir:
    description:
      - Folder holding C(pg_dump) and C(pg_restore). By default C(/usr/lib/postgresql/MAJOR/bin) for the server's
        major version (Debian), else the newest such folder that is new enough, else the C(PATH).
    type: path
  lock_timeout:
    description:
      - Seconds to wait for another pg_backup run on the same O(dest) (a lock file, C(.dbstack-backup.lock)) before failing.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Reports whether it would take a backup, what retention would prune, or what a restore would replace;
      verification (checksum, C(pg_restore --list)) still runs because it only reads; nothing is written.
  diff_mode:
    support: none
    description: Backups are archives, not text state to show as a diff.
  idempotent:
    support: partial
    description: With O(max_age), a run while the newest backup is fresh reports C(changed=false). Without it each
      run takes a new backup. V(verified) never changes anything; V(restored) always restores when asked to.
notes:
  - Run it on the PostgreSQL host over the local socket (C(become_user=postgres)) or anywhere that reaches the server,
    for example a backup host and a managed database through O(dsn) with C(sslmode=verify-full).
  - V(restored) needs room for a second copy of the database while it restores, and restores with
    C(--no-owner --no-acl --exit-on-error); database-level settings (C(ALTER DATABASE ... SET)) are not part of the dump.
requirements:
  - pg_dump and pg_restore (PostgreSQL client tools) on the host that runs the module.
seealso:
  - name: pg_dump
    description: The PostgreSQL manual page of pg_dump.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
"""

EXAMPLES = r"""
- name: Back up appdb at most once every 23 hours, keep 7 backups and at least the last 14 days
  dbstack.ha.pg_backup:
    database: appdb
    dest: /var/backups/dbstack/postgres
    login_unix_socket: /var/run/postgresql
    max_age: 23h
    keep: 7
    keep_days: 14
  become: true
  become_user: postgres
  register: backup

- name: A managed database, parallel directory dump, verify-full TLS
  dbstack.ha.pg_backup:
    dsn: "postgresql://backup@db.example.cloud:5432/appdb?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-ca.pem"
    login_password: "{{ vault_backup_password }}"
    dest: /srv/backups/appdb
    format: directory
    jobs: 4

- name: Verify it, including a restore into a scratch database
  dbstack.ha.pg_backup:
    state: verified
    dest: /var/backups/dbstack/postgres
    name: "{{ backup.backup.name }}"
    restore_test: true
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres

- name: Restore the newest appdb backup over appdb (its connections are terminated)
  dbstack.ha.pg_backup:
    state: restored
    database: appdb
    dest: /var/backups/dbstack/postgres
    target_database: appdb
    target_owner: app
    force: true
    jobs: 2
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres
"""

RETURN = r"""
backup:
  description:
    - The manifest of the backup taken, found fresh, verified or restored (without per-file checksums).
  returned: when there is one
  type: dict
  sample:
    name: appdb-20261122T031000Z
    database: appdb
    format: custom
    archive: appdb-20261122T031000Z.dump
    created_at: "2026-11-22T03:10:00Z"
    created_epoch: 1795316200.1
    duration_seconds: 0.71
    size_bytes: 2871234
    sha256: 9f2c...
    server_version: "15.20"
    client_version: "15.20"
    tables: {"public.pgbench_accounts": 1000000}
    large_objects: 0
path:
  description: Full path of the backup's archive (file or folder).
  returned: when there is a backup
  type: str
  sample: /var/backups/dbstack/postgres/appdb-20261122T031000Z.dump
skipped:
  description: With O(state=present), true when no backup was taken because the newest is younger than O(max_age).
  returned: with O(state=present)
  type: bool
  sample: false
pruned:
  description: Names of the backups retention removed (or would remove, in check mode).
  returned: with O(state=present)
  type: list
  elements: str
  sample: [appdb-20261101T031000Z]
kept:
  description: Names of this database's backups left in O(dest) after retention, newest first.
  returned: with O(state=present)
  type: list
  elements: str
  sample: [appdb-20261122T031000Z, appdb-20261121T031000Z]
removed_partials:
  description: Leftovers of interrupted runs (hidden C(.dbstack-partial-*) entries) removed before dumping.
  returned: with O(state=present)
  type: list
  elements: str
  sample: []
verification:
  description: What O(state=verified) or O(state=restored) checked.
  returned: with O(state=verified) or O(state=restored)
  type: dict
  sample:
    checksum: ok
    toc_entries: 42
    restore_test: {"database": "dbstack_restore_test", "duration_seconds": 1.7, "tables": 4, "rows": 1000013,
                   "large_objects": 1, "compared_with": "manifest"}
restored:
  description: Whether O(state=restored) restored (true in check mode when it would).
  returned: with O(state=restored)
  type: bool
  sample: true
target_database:
  description: The database restored into.
  returned: with O(state=restored)
  type: str
  sample: appdb_copy
terminated_connections:
  description: Connections to the replaced database that were terminated.
  returned: with O(state=restored)
  type: int
  sample: 0
duration_seconds:
  description: Wall time of C(pg_dump) (V(present)) or C(pg_restore) and the swap (V(restored)).
  returned: when a dump or restore ran
  type: float
  sample: 0.7
actions:
  description: What the run did, or would do in check mode, in words.
  returned: always
  type: list
  elements: str
  sample: ["dump appdb to /var/backups/dbstack/postgres/appdb-20261122T031000Z.dump"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbstack.ha.plugins.module_utils.backup import valid_database_name
from ansible_collections.dbstack.ha.plugins.module_utils.backup_runner import BackupError, Backups
from ansible_collections.dbstack.ha.plugins.module_utils.postgres import (
    ensure_psycopg,
    postgres_common_argument_spec,
    postgres_mutually_exclusive,
    psycopg,
    redact,
)


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["present", "verified", "restored"], default="present"),
        database=dict(type="str"),
        dest=dict(type="path", required=True),
        format=dict(type="str", choices=["custom", "directory"], default="custom"),
        jobs=dict(type="int", default=1),
        compress=dict(type="int"),
        max_age=dict(type="str"),
        keep=dict(type="int"),
        keep_days=dict(type="int"),
        row_counts=dict(type="bool", default=True),
        free_space_factor=dict(type="float", default=1.0),
        name=dict(type="str"),
        restore_test=dict(type="bool", default=False),
        restore_test_database=dict(type="str", default="dbstack_restore_test"),
        target_database=dict(type="str"),
        target_owner=dict(type="str"),
        force=dict(type="bool", default=False),
        maintenance_db=dict(type="str", default="postgres"),
        pg_bin_dir=dict(type="path"),
        lock_timeout=dict(type="int", default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=postgres_mutually_exclusive(),
                           required_if=[("state", "restored", ["target_database"])],
                           supports_check_mode=True)
    params = module.params
    for option, low in (("jobs", 1), ("lock_timeout", 0)):
        if params[option] < low:
            module.fail_json(msg="%s must be at least %d, got %d" % (option, low, params[option]))
    for option in ("keep", "keep_days"):
        if params[option] is not None and params[option] < 1:
            module.fail_json(msg="%s must be at least 1, got %d (leave it unset to keep everything)"
                                 % (option, params[option]))
    if params["compress"] is not None and not 0 <= params["compress"] <= 9:
        module.fail_json(msg="compress must be between 0 and 9, got %d" % params["compress"])
    if params["free_space_factor"] < 0:
        module.fail_json(msg="free_space_factor must be 0 or more")
    if params["jobs"] > 1 and params["format"] == "custom" and params["state"] == "present":
        module.warn("jobs=%d only speeds up pg_dump with format=directory; custom format dumps with one job"
                    % params["jobs"])
    if not valid_database_name(params["restore_test_database"]) or \
            params["restore_test_database"] in ("postgres", "template0", "template1"):
        module.fail_json(msg="restore_test_database %r cannot be used as a scratch database"
                             % params["restore_test_database"])
    ensure_psycopg(module)

    backups = Backups(module)
    try:
        if params["state"] == "present":
            result = backups.present()
        elif params["state"] == "verified":
            result = backups.verified()
        else:
            result = backups.restored()
    except BackupError as exc:
        extra = dict(exc.extra)
        extra.setdefault("actions", backups.actions)
        module.fail_json(msg=exc.msg, **extra)
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL error during pg_backup state=%s: %s" % (
            params["state"], redact(str(exc).strip(), backups.secrets)), actions=backups.actions)
    except (IOError, OSError) as exc:
        module.fail_json(msg="pg_backup state=%s: %s: %s" % (
            params["state"], getattr(exc, "filename", None) or backups.dest, exc.strerror or exc),
            actions=backups.actions)
    finally:
        backups.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
