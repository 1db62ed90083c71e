# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dbstack.ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decision logic of the pg_promote module, kept free of I/O so it can be unit tested."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Decision(object):
    """What pg_promote should do, and why."""

    PROMOTE = "promote"
    NOTHING = "nothing"
    REFUSE = "refuse"

    def __init__(self, action, reason, warnings=None):
        self.action = action
        self.reason = reason
        self.warnings = warnings or []

    def __repr__(self):
        return "Decision(%s, %r)" % (self.action, self.reason)


def timeline_from_walfile(walfile):
    """'0000000200000000000000A1' -> 2 (the timeline is the first 8 hex digits)."""
    if not walfile or len(walfile) < 8:
        return None
    try:
        return int(walfile[:8], 16)
    except ValueError:
        return None


def decide(in_recovery, lag_bytes=None, max_lag_bytes=None, upstream=None, force=False):
    """Decide whether to promote.

    in_recovery: pg_is_in_recovery() of the target.
    lag_bytes: how far the target's replay is behind (None when unknown).
    upstream: dict(host, port, reachable, writable, error) about the primary the
      standby streams from, or None when the standby has no upstream configured.
      reachable=True with writable=None means it answered but could not be
      checked (for example it refused our credentials): it may still take writes.
    force: skip the split-brain and lag guards.
    """
    if not in_recovery:
        return Decision(Decision.NOTHING, "the server is already a primary (pg_is_in_recovery() is false)")

    warnings = []
    refusals = []
    if upstream and upstream.get("writable"):
        refusals.append(
            "its upstream primary %s:%s is reachable and still accepts writes; promoting now would give two "
            "writable primaries (split brain). Stop or fence the old primary first, or set force=true if you "
            "are certain no client can reach it" % (upstream.get("host"), upstream.get("port")))
    elif upstream and upstream.get("reachable") and upstream.get("writable") is None:
        refusals.append(
            "its upstream primary %s:%s answers but could not be checked (%s), so it may still accept writes. "
            "Fix the credentials for the check, stop the old primary, or set force=true"
            % (upstream.get("host"), upstream.get("port"), upstream.get("error") or "unknown"))
    elif upstream and upstream.get("reachable") is False:
        warnings.append("upstream primary %s:%s is unreachable from the standby (%s); treated as down — make sure "
                        "it is fenced, since clients on the other side of a partition could still write to it"
                        % (upstream.get("host"), upstream.get("port"), upstream.get("error") or "no answer"))
    if max_lag_bytes is not None:
        if lag_bytes is None:
            refusals.append("max_lag_bytes=%d was given but the replay lag could not be measured" % max_lag_bytes)
        elif lag_bytes > max_lag_bytes:
            refusals.append("its replay lag is %d bytes, above max_lag_bytes=%d; promoting would lose the "
                            "transactions it has not replayed. Wait for it to catch up or set force=true"
                            % (lag_bytes, max_lag_bytes))

    if refusals and not force:
        return Decision(Decision.REFUSE, "Refusing to promote: " + "; ".join(refusals), warnings)
    if refusals:
        warnings.extend("force=true overrides: " + r for r in refusals)
    return Decision(Decision.PROMOTE, "the server is a standby", warnings)
