"""The shared file helpers: one InputError for every way reading fails; writes are all or nothing."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from themis.common.atomic import write_atomic, write_text_atomic
from themis.common.errors import InputError
from themis.common.files import read_json_object, read_text


def test_reading_reports_each_failure_naming_the_file(tmp_path) -> None:
    binary = tmp_path / "junk.json"
    binary.write_bytes(b"\xff\xfe\x00junk")
    cases = {
        tmp_path / "missing.json": "file not found",
        tmp_path: "is a directory",
        binary: "not a text file",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message) as error:
            read_text(path)
        assert str(path) in str(error.value)


@given(st.text(max_size=40))
def test_only_a_json_object_is_accepted(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("json") / "plan.json"
    path.write_text(text, encoding="utf-8")
    try:
        expected = json.loads(text)
    except json.JSONDecodeError:
        expected = None
    if isinstance(expected, dict):
        assert read_json_object(path, "a plan") == expected
    else:
        with pytest.raises(InputError, match="plan.json"):
            read_json_object(path, "a plan")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "plan.json"
    write_text_atomic(target, "old")

    def crash(tmp) -> None:
        tmp.write_text("half of the new", encoding="utf-8")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomic(target, crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path) -> None:
    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "out.csv", "a,b\n")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_writing_into_a_missing_directory_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="directory does not exist"):
        write_text_atomic(tmp_path / "nope" / "x.json", "{}")
