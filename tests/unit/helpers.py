# -*- coding: utf-8 -*-
"""Shared helpers for unit tests: a stand-in for AnsibleModule's failure path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class FailJson(Exception):
    def __init__(self, kwargs):
        super(FailJson, self).__init__(kwargs.get("msg"))
        self.kwargs = kwargs


class FakeModule(object):
    """Just enough of AnsibleModule for module_utils: params, no_log_values, fail_json."""

    def __init__(self, params):
        self.params = params
        self.no_log_values = set()

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)
