# -*- coding: utf-8 -*-
"""Every shell script of the repository passes shellcheck."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = ["lab/build-image.sh", "lab/timed", "tests/lab_e2e.sh", "tests/run_suite.sh", ".ci/run"]


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is installed by make test-deps")
@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck(script):
    proc = subprocess.run(["shellcheck", "-x", os.path.join(ROOT, script)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
