# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: support_collect
short_description: Collect one host's part of a support bundle, redacted on the host
version_added: 0.3.0
description:
  - Reads files (the tail of each, bounded), runs read-only commands and fetches local URLs, masks every secret in
    what it read with the collection's one redaction (C(plugins/module_utils/redact.py), the same as the
    P(dbstack.ha.redact_secrets#filter) filter), and writes the result as one C(tar.gz) on the host (0600), for the
    controller to fetch. Nothing unredacted leaves the host, in the archive or in the module's result.
  - A file holding a PEM private key, or named like one (C(*.key), C(*.pem) with a key), is never collected; it is
    listed in RV(not_collected).
  - The redaction report (RV(redactions)) says, per item, which rule masked how many values. Keys stay, values go
    (C(requirepass ********)), so the configuration stays readable.
  - Used by the P(dbstack.ha.support_bundle#role) role (C(playbooks/support_bundle.yml)).
author: dbstack.ha contributors (@dbstack)
options:
  dest:
    description: The archive to write on the host. Its directory must exist. Written 0600, replaced whole.
    type: path
    required: true
  prefix:
    description: The folder every item gets inside the archive (the host's name).
    type: str
    required: true
  files:
    description:
      - Paths or glob patterns of files to collect. A pattern that matches nothing is reported in RV(not_collected)
        (C(no match)), not an error. Directories are skipped.
    type: list
    elements: str
    default: []
  commands:
    description:
      - Read-only commands to run; their standard output and error (and exit code) become one item each.
      - A command that is not installed, fails, or runs over O(timeout) is recorded as such, never a failure of
        the module.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The item's name in the archive (C(postgres/pg_settings.txt)).
        type: str
        required: true
      argv:
        description: The command and its arguments (no shell).
        type: list
        elements: str
        required: true
      env:
        description: Extra environment for the command (C(REDISCLI_AUTH), C(PGPASSWORD)). Never returned.
        type: dict
        default: {}
  urls:
    description: Local HTTP endpoints to read (Prometheus and Alertmanager alerts), one item each.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The item's name in the archive.
        type: str
        required: true
      url:
        description: The URL.
        type: str
        required: true
  documents:
    description:
      - Texts already read by other tasks (for example M(dbstack.ha.pgbouncer_info)'s result as JSON), redacted and
        added like the rest.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The item's name in the archive.
        type: str
        required: true
      content:
        description: The text. Not shown in the task's output (it is read before redaction).
        type: str
        required: true
  known_secrets:
    description:
      - Secret values to mask wherever they appear (and URL-encoded), on top of the redaction's patterns. Pass the
        inventory's passwords here; a value shorter than 4 characters is ignored.
    type: list
    elements: str
    default: []
  max_bytes:
    description: At most this many bytes of each item are kept - the end of it (logs grow at the end).
    type: int
    default: 262144
  timeout:
    description: Seconds each command and URL may take.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Reads and redacts everything and reports it (C(changed=true), the archive it would write), without
      writing the archive.
  diff_mode:
    support: none
    description: There is no state to compare; RV(items) and RV(redactions) say what was collected.
  idempotent:
    support: none
    description: Each run writes a new archive of what the host holds at that moment (C(changed) is always true).
notes:
  - Run it with C(become) to read configuration and logs.
"""

EXAMPLES = r"""
- name: Collect this host's part of the bundle
  dbstack.ha.support_collect:
    dest: /var/tmp/dbstack-support-pg1.tar.gz
    prefix: pg1
    files:
      - /etc/postgresql/*/*/postgresql.conf
      - /etc/postgresql/*/*/conf.d/*.conf
      - /var/log/postgresql/*.log
    commands:
      - name: postgres/pg_settings.txt
        argv: [runuser, -u, postgres, --, psql, -X, -c, "SELECT name, setting FROM pg_settings WHERE source <> 'default'"]
      - name: redis/info.txt
        argv: [redis-cli, --no-auth-warning, INFO]
        env:
          REDISCLI_AUTH: "{{ redis_password }}"
    urls:
      - name: prometheus/alerts.json
        url: http://127.0.0.1:9090/api/v1/alerts
    known_secrets: "{{ [postgres_password, redis_password] }}"
  become: true
  register: collected
"""

RETURN = r"""
archive:
  description: The archive written on the host (also in check mode, where it is not written).
  returned: always
  type: str
items:
  description: What was collected - C(name), C(source), C(bytes) (kept), C(truncated), and C(rc) / C(error) where a
    command or URL did not work.
  returned: always
  type: list
  elements: dict
redactions:
  description: Per item, a count per rule of the values masked (C(keyword), C(scram_verifier), C(redis_acl) ...).
  returned: always
  type: dict
  sample: {"etc/redis/redis.conf": {"redis_directive": 2}}
redacted:
  description: How many values were masked in all.
  returned: always
  type: int
per_rule:
  description: How many values each rule masked, over every item.
  returned: always
  type: dict
not_collected:
  description: What was not collected and why (C(no match), C(private key), C(directory), C(unreadable)).
  returned: always
  type: list
  elements: dict
"""

import glob
import io
import os
import subprocess
import tarfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.urls import open_url

from ansible_collections.dbstack.ha.plugins.module_utils.files import replace_file
from ansible_collections.dbstack.ha.plugins.module_utils.redact import Redactor, has_private_key

KEY_NAMES = (".key", "_key", "-key", ".p12", ".pfx", "id_rsa", "id_ecdsa", "id_ed25519")


def tail(data, max_bytes):
    """(the last max_bytes of data, whether it was cut)."""
    if len(data) <= max_bytes:
        return data, False
    return data[-max_bytes:], True


class Collector(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.redactor = Redactor(self.params["known_secrets"])
        self.items = []
        self.members = []
        self.redactions = {}
        self.skipped = []

    def add(self, name, source, data, extra=None):
        kept, truncated = tail(data, self.params["max_bytes"])
        before = dict(self.redactor.counts)
        text = self.redactor.text(to_text(kept, errors="surrogate_or_replace"), name)
        delta = dict((rule, count - before.get(rule, 0)) for rule, count in self.redactor.counts.items()
                     if count != before.get(rule, 0))
        if delta:
            self.redactions[name] = delta
        if truncated:
            text = "[... first %d bytes not collected ...]\n%s" % (len(data) - len(kept), text)
        body = to_bytes(text, errors="surrogate_or_replace")
        item = dict(name=name, source=source, bytes=len(body), truncated=truncated)
        item.update(extra or {})
        self.items.append(item)
        self.members.append((name, body))

    def files(self):
        for pattern in self.params["files"]:
            paths = sorted(glob.glob(pattern))
            if not paths:
                self.skipped.append(dict(name=pattern, reason="no match"))
            for path in paths:
                name = path.lstrip("/")
                if os.path.isdir(path):
                    self.skipped.append(dict(name=path, reason="directory"))
                    continue
                if os.path.basename(path).lower().endswith(KEY_NAMES):
                    self.skipped.append(dict(name=path, reason="private key (by name): never collected"))
                    continue
                try:
                    with open(path, "rb") as handle:
                        data = handle.read()
                except (IOError, OSError) as exc:
                    self.skipped.append(dict(name=path, reason="unreadable: %s" % exc.strerror))
                    continue
                if has_private_key(to_text(data, errors="surrogate_or_replace")):
                    self.skipped.append(dict(name=path, reason="private key: never collected"))
                    continue
                self.add(name, path, data)

    def commands(self):
        for command in self.params["commands"]:
            env = dict(os.environ)
            env.update(dict((k, str(v)) for k, v in (command["env"] or {}).items()))
            env.setdefault("LC_ALL", "C.UTF-8")
            argv = command["argv"]
            header = "$ %s\n" % " ".join(argv)
            try:
                proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                      timeout=self.params["timeout"], check=False)
            except OSError as exc:
                self.add(command["name"], "command", to_bytes(header + "not run: %s\n" % exc.strerror),
                         dict(error="not run: %s" % exc.strerror))
                continue
            except subprocess.TimeoutExpired as exc:
                self.add(command["name"], "command", to_bytes(header) + (exc.output or b"") +
                         to_bytes("\n[stopped after %d s]\n" % self.params["timeout"]),
                         dict(error="timed out after %d s" % self.params["timeout"]))
                continue
            extra = dict(rc=proc.returncode)
            if proc.returncode:
                extra["error"] = "exit code %d" % proc.returncode
            self.add(command["name"], "command", to_bytes(header) + proc.stdout, extra)

    def urls(self):
        for entry in self.params["urls"]:
            try:
                response = open_url(entry["url"], timeout=self.params["timeout"], validate_certs=False)
                self.add(entry["name"], entry["url"], response.read())
            # A URL that fails is recorded, whatever the failure.
            except Exception as exc:  # pylint: disable=broad-except
                self.add(entry["name"], entry["url"], to_bytes("%s: %s\n" % (entry["url"], exc)),
                         dict(error=to_text(exc)))

    def documents(self):
        for document in self.params["documents"]:
            self.add(document["name"], "document", to_bytes(document["content"], errors="surrogate_or_replace"))

    def write(self, dest):
        """The archive, 0600, replacing dest whole (module_utils/files.replace_file)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            now = time.time()
            for name, body in self.members:
                info = tarfile.TarInfo("%s/%s" % (self.params["prefix"].strip("/"), name.lstrip("/")))
                info.size = len(body)
                info.mtime = now
                info.mode = 0o600
                archive.addfile(info, io.BytesIO(body))
        replace_file(dest, buffer.getvalue(), 0o600)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            prefix=dict(type="str", required=True),
            files=dict(type="list", elements="str", default=[]),
            commands=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                argv=dict(type="list", elements="str", required=True),
                env=dict(type="dict", default={}, no_log=True),
            )),
            urls=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                url=dict(type="str", required=True),
            )),
            documents=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                content=dict(type="str", required=True, no_log=True),
            )),
            known_secrets=dict(type="list", elements="str", default=[], no_log=True),
            max_bytes=dict(type="int", default=262144),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["max_bytes"] < 1024:
        module.fail_json(msg="max_bytes must be at least 1024 (the tail kept of each item), got %d" % params["max_bytes"])
    if params["timeout"] < 1:
        module.fail_json(msg="timeout must be at least 1 second, got %d" % params["timeout"])
    if not params["prefix"].strip("/") or ".." in params["prefix"].split("/"):
        module.fail_json(msg="prefix %r is not a folder name for the archive: use the host's name" % params["prefix"])
    directory = os.path.dirname(params["dest"]) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg="dest %s: the directory %s does not exist" % (params["dest"], directory))
    names = [c["name"] for c in params["commands"]] + [u["name"] for u in params["urls"]] + \
        [d["name"] for d in params["documents"]]
    twice = sorted(set(n for n in names if names.count(n) > 1))
    if twice:
        module.fail_json(msg="commands, urls and documents: each name once in the archive; named twice: %s"
                         % ", ".join(twice))
    collector = Collector(module)
    collector.files()
    collector.commands()
    collector.urls()
    collector.documents()
    if not module.check_mode:
        try:
            collector.write(params["dest"])
        except (IOError, OSError, tarfile.TarError) as exc:
            module.fail_json(msg="support bundle: could not write %s: %s" % (params["dest"], exc))
    module.exit_json(changed=True, archive=params["dest"], items=collector.items, redactions=collector.redactions,
                     redacted=sum(collector.redactor.counts.values()), per_rule=collector.redactor.counts,
                     not_collected=collector.skipped)


if __name__ == "__main__":
    main()
