"""Hostile settings: any value of any setting, from the environment or a settings file, and
any settings file text, give Settings or a ConfigError naming the key (or the variable);
never a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as fuzz
from hypothesis import strategies as st

from shrinkwatch.errors import ConfigError
from shrinkwatch.settings import Settings, load_settings

FUZZ = fuzz(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FIELDS = sorted(Settings.model_fields)
# What an environment variable can hold: any text but a NUL (the OS refuses one).
ENV_TEXT = st.one_of(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
    st.sampled_from(["[1, 2", "not json", "[]", '["a"]', "{}", "-1", "1e999", "nan", "true", "x" * 5000]),
)
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.sampled_from(["\x00", "\ud800", "${", "${NOPE}", "a\x00b"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def judge(path: Path | None = None) -> Settings | str:
    try:
        return load_settings(path, home=Path("/tmp/unused"))
    except ConfigError as exc:
        text = str(exc)
        assert text and "Traceback" not in text
        return text


@FUZZ
@given(st.sampled_from(FIELDS), ENV_TEXT)
def test_any_environment_value_of_any_setting(field: str, value: str) -> None:
    assume(field != "home")  # the test's own override wins over it
    variable = f"SHRINKWATCH_{field.upper()}"
    with environment({variable: value}):
        result = judge()
    if isinstance(result, str):
        assert field in result or variable in result, result


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=3))
def test_any_file_value_of_any_setting(tmp_path: Path, values: dict[str, Any]) -> None:
    assume("home" not in values)
    path = tmp_path / "settings.yaml"
    try:
        path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    except (yaml.YAMLError, UnicodeEncodeError):
        assume(False)
    result = judge(path)
    if isinstance(result, str):
        assert any(field in result for field in values), result


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=100)))
def test_any_settings_file(tmp_path: Path, content: str | bytes) -> None:
    path = tmp_path / "settings.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    judge(path)


def test_a_list_variable_that_is_not_json_names_the_variable() -> None:
    with environment({"SHRINKWATCH_CLASSES": "person,handbag"}):
        result = judge()
    assert isinstance(result, str) and result.startswith("SHRINKWATCH_CLASSES: ")
    assert 'a list is written as JSON, e.g. ["person", "handbag"]' in result


def test_what_broke_the_settings_file_before_is_named(tmp_path: Path) -> None:
    cases = {
        b"1: 2\n": "1: a setting's name is text",
        b"\xff\xfe": "'utf-8' codec can't decode",
        b"classes: " + b"[" * 3000 + b"]" * 3000: "nested too deeply",
        b'evidence_path: "a\\0b"\n': "evidence_path: must not contain a NUL character",
        b"conf: .nan\n": "conf: Input should be a finite number",
    }
    for content, reason in cases.items():
        path = tmp_path / "settings.yaml"
        path.write_bytes(content)
        result = judge(path)
        assert isinstance(result, str) and reason in result, (content[:20], result)
