"""Validate JUnit reports against tests/junit.xsd (the strict Ant format the CI systems read)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("junit.xsd"))))


def assert_valid_junit(document: bytes) -> etree._Element:
    root = etree.fromstring(document)
    if not SCHEMA.validate(root):
        raise AssertionError(f"not valid JUnit XML: {SCHEMA.error_log}\n{document.decode()}")
    return root
