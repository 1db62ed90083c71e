# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile

import pytest

from ansible_collections.dbstack.ha.tests.integration.servers import Servers


@pytest.fixture(scope="session")
def servers():
    base = tempfile.mkdtemp(prefix="dbstack-it-")
    srv = Servers(base)
    try:
        yield srv.start()
    finally:
        srv.stop()
        if os.environ.get("DBSTACK_KEEP_TEST_SERVERS") != "1":
            shutil.rmtree(base, ignore_errors=True)
