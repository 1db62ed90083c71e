# -*- coding: utf-8 -*-
"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap its venvs.

ansible-test fetches that script from its own CI file host, which only the
package registries' hosts are reachable from here. This script does the same
job offline: Python's bundled ensurepip, then `pip install` of the exact pip
version ansible-test asked for, from the configured package index.
`make sanity` copies it into ~/.ansible/test/cache/ under the expected name.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
