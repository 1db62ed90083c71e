# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of plugins/module_utils/redis.py
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host of the Redis (or Valkey) node, or of a Sentinel.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - Port of the node (6379) or of a Sentinel (26379).
    type: int
    default: 6379
  login_user:
    description:
      - ACL user (Redis 6 or later). Leave unset to authenticate with C(requirepass) only.
    type: str
  login_password:
    description:
      - Password of O(login_user), or the C(requirepass) password. Never logged, never part of an error message.
    type: str
  tls:
    description:
      - Connect with TLS (the node's C(tls-port)).
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the server certificate and its host name. Only turn off in a lab.
    type: bool
    default: true
  ca_cert:
    description:
      - CA certificate that signed the server certificate. Needs O(tls=true).
    type: path
    aliases: [tls_ca_cert]
  client_cert:
    description:
      - Client certificate, when the server sets C(tls-auth-clients). Needs O(client_key).
    type: path
    aliases: [tls_cert]
  client_key:
    description:
      - Private key of O(client_cert).
    type: path
    aliases: [tls_key]
  connect_timeout:
    description:
      - Seconds to wait for the connection and for each reply.
    type: float
    default: 5.0
requirements:
  - redis-py (Debian C(python3-redis)) on the host that runs the module.
"""

    # Finding the master through Sentinels.
    SENTINEL = r"""
options:
  sentinel_hosts:
    description:
      - Sentinels to ask for the current master, as C(HOST) or C(HOST:PORT) (port 26379 by default).
    type: list
    elements: str
  sentinel_password:
    description:
      - The Sentinels' own C(requirepass), when set. Never logged.
    type: str
  sentinel_master_name:
    description:
      - Name of the monitored master (C(sentinel monitor NAME ...)).
    type: str
    default: mymaster
"""
