# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: redact_secrets
short_description: Mask every form a secret takes on this stack, keeping keys and structure
version_added: 0.3.0
description:
  - The controller-side entry point of the collection's one redaction (C(plugins/module_utils/redact.py)), the same
    that M(dbstack.ha.support_collect) runs on each host before anything leaves it.
  - Masks values, keeps keys, so that the text stays readable (C(requirepass ********), C(password=********)).
    Covers passwords in configs and env files (C(KEY=value), INI, YAML, JSON, libpq key=value strings, systemd
    C(Environment=) lines), passwords in URLs and on command lines, SCRAM and md5 verifiers, C(requirepass),
    C(masterauth), C(sentinel auth-pass), C(sentinel-pass), Redis ACL C(>password), C(<password), C(#sha256) and
    C(!sha256), C(PASSWORD '...') in SQL, the password field of C(.pgpass) lines (when O(name) says pgpass), PEM
    private keys (the block goes), and any value given in O(known).
  - A dict or list is walked; a string under a key that names a secret (C(password), C(*_token), ...) is masked
    whole.
options:
  _input:
    description: A text, or a dict or list holding texts.
    type: raw
    required: true
  known:
    description: Values to mask wherever they appear (and URL-encoded), on top of the patterns.
    type: list
    elements: str
    default: []
  name:
    description: Where the text comes from (a file name); C(.pgpass) lines are read as such only when it says pgpass.
    type: str
    default: ""
  report:
    description: Return C({value, redactions}) instead of the value, C(redactions) being a count per rule.
    type: bool
    default: false
author: dbstack.ha contributors
"""

EXAMPLES = r"""
- name: Write a PgBouncer SHOW DATABASES result into a support bundle, redacted
  ansible.builtin.copy:
    content: "{{ pgbouncer_show.databases | dbstack.ha.redact_secrets | to_nice_json }}"
    dest: /tmp/bundle/pgbouncer_databases.json
    mode: "0600"
  delegate_to: localhost

- name: What would be masked, and how often
  ansible.builtin.debug:
    msg: "{{ (lookup('ansible.builtin.file', 'app.env') | dbstack.ha.redact_secrets(report=true)).redactions }}"
"""

RETURN = r"""
_value:
  description:
    - The input with every secret masked as C(********); with O(report=true) a dict C(value) (that) and
      C(redactions) (a count per rule - C(keyword), C(url_password), C(scram_verifier) ...).
  type: raw
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.dbstack.ha.plugins.module_utils.redact import Redactor


def redact_secrets(value, known=None, name="", report=False):
    if known is not None and (isinstance(known, string_types) or not isinstance(known, (list, tuple))):
        raise AnsibleFilterError("redact_secrets: known must be a list of values, got %s" % type(known).__name__)
    redactor = Redactor(known or ())
    if isinstance(value, string_types):
        masked = redactor.text(str(value), name or "")
    else:
        masked = redactor.data(value, "")
    if report:
        return dict(value=masked, redactions=redactor.counts)
    return masked


class FilterModule(object):
    def filters(self):
        return {"redact_secrets": redact_secrets}
