"""The examples in the package's docstrings run."""

from __future__ import annotations

import doctest
import unittest

import netsock.addr
import netsock.frames
import netsock.handshake
import netsock.schema


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str | None) -> unittest.TestSuite:
    for module in (netsock.addr, netsock.frames, netsock.handshake, netsock.schema):
        tests.addTests(doctest.DocTestSuite(module))
    return tests
