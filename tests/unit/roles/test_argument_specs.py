# -*- coding: utf-8 -*-
"""Every role's meta/argument_specs.yml (entry point main) agrees with its defaults/main.yml.

- every variable in defaults is an option of main, with the same default (a default computed from other
  variables may instead be explained in the option's description);
- every option with a default is in defaults with that value;
- a required option has no default, in the spec or in defaults (a default would hide the error);
- an option's default has the option's type.
Roles are found under roles/, so a new role is covered without touching this test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "roles")
ROLE_NAMES = sorted(name for name in os.listdir(ROLES) if os.path.isdir(os.path.join(ROLES, name, "tasks")))
TYPES = {"str": str, "path": str, "raw": object, "int": int, "bool": bool, "list": list, "dict": dict,
         "float": (int, float)}


def load(role, *parts):
    path = os.path.join(ROLES, role, *parts)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return yaml.safe_load(handle)


def is_template(value):
    return isinstance(value, str) and "{{" in value


def describe(option):
    text = option.get("description") or ""
    return " ".join(text) if isinstance(text, list) else text


def test_roles_are_found():
    assert {"common", "pgbouncer", "postgres_ha", "sentinel", "tls_cert"} <= set(ROLE_NAMES)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_argument_specs_match_defaults(role):
    specs = load(role, "meta", "argument_specs.yml")
    assert specs, "roles/%s has no meta/argument_specs.yml: write one with the entry point main" % role
    options = specs["argument_specs"]["main"].get("options") or {}
    defaults = load(role, "defaults", "main.yml") or {}
    problems = []
    for name, value in sorted(defaults.items()):
        if name not in options:
            problems.append("%s is in defaults/main.yml but not an option of argument_specs main" % name)
        elif options[name].get("required"):
            problems.append("%s is required in argument_specs but has a default (%r) in defaults/main.yml: a missing "
                            "value would pass unnoticed - remove the default" % (name, value))
        elif "default" not in options[name]:
            if is_template(value) and "default" in describe(options[name]).lower():
                continue  # computed from other variables: the description says how, no value of its type fits
            problems.append("%s: defaults/main.yml sets %r, argument_specs has no default" % (name, value))
        elif options[name]["default"] != value:
            problems.append("%s: defaults/main.yml says %r, argument_specs default %r"
                            % (name, value, options[name]["default"]))
    for name, option in sorted(options.items()):
        if option.get("required") and "default" in option:
            problems.append("%s is required and has a default in argument_specs" % name)
        if "default" in option and name not in defaults:
            problems.append("%s has default %r in argument_specs but is not in defaults/main.yml"
                            % (name, option["default"]))
        kind = TYPES.get(option.get("type", "str"))
        default = option.get("default")
        if default is not None and kind is not None and not isinstance(default, kind):
            if not is_template(default):  # a template is checked when it renders
                problems.append("%s: default %r is not of type %s" % (name, default, option.get("type", "str")))
        if name.startswith("__"):
            problems.append("%s is internal (__) and must not be an option" % name)
        elif not name.startswith(role + "_"):
            problems.append("%s is not prefixed with the role name (%s_)" % (name, role))
    assert not problems, "roles/%s:\n  %s" % (role, "\n  ".join(problems))
