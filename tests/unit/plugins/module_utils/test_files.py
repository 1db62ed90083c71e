# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.dbstack.ha.plugins.module_utils.files import replace_file


def test_replace_file_text_and_bytes(tmp_path):
    path = tmp_path / "f"
    replace_file(str(path), u"first\n", 0o640)
    assert path.read_text() == "first\n" and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    blob = b"\x1f\x8b\x00\xff binary"
    replace_file(str(path), blob, 0o600)
    assert path.read_bytes() == blob and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["f"]  # no temporary file left
