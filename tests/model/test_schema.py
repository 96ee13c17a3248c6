"""The config schema is written once: the dataclasses, the reader, the known keys and the docs all agree with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from jupiter.mapping.registry import mapper_names
from jupiter.model import schema
from jupiter.model.config import META_FIELDS, JupiterConfig, parse_config
from jupiter.model.errors import InputError
from jupiter.model.schema import SETTINGS, Choice, Ignored, Plugin, markdown_table, setting_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _leaf_fields(cls: type[Any], prefix: str = "") -> list[str]:
    """Dotted names of every settings attribute of JupiterConfig, walking into the nested settings objects."""
    hints = get_type_hints(cls)
    names: list[str] = []
    for item in dataclasses.fields(cls):
        if not prefix and item.name in META_FIELDS:
            continue
        kind = hints[item.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            names += _leaf_fields(kind, f"{prefix}{item.name}.")
        else:
            names.append(f"{prefix}{item.name}")
    return names


def _get(config: object, dotted: str) -> Any:
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _lists(section: str) -> Any:
    return schema.ORIGINAL_LISTS[section]


def test_every_field_is_filled_by_exactly_one_setting() -> None:
    filled = [setting.field for setting in SETTINGS if setting.field is not None]
    assert sorted(filled) == sorted(_leaf_fields(JupiterConfig))
    assert len(filled) == len(set(filled))


def test_every_setting_fills_a_field_except_ignored_ones() -> None:
    for setting in SETTINGS:
        assert (setting.field is None) == isinstance(setting.kind, Ignored), setting.key
    assert [(s.section, s.key) for s in SETTINGS if s.field is None] == [("AUTH", "PASSWORD")]


def test_keys_are_unique_and_known_keys_come_from_the_table() -> None:
    keys = [(setting.section, setting.key) for setting in SETTINGS]
    assert len(keys) == len(set(keys))
    assert {section: list(names) for section, names in schema.KNOWN_KEYS.items()} == {
        section: [key for sec, key in keys if sec == section] for section, _ in keys
    }
    assert not any((section, key) in schema.ORIGINAL_ONLY for section, key in keys)


def test_scheduler_names_are_the_registry() -> None:
    kind = setting_of("CONFIG", "SCHEDULER").kind
    assert isinstance(kind, Choice)
    assert kind.names is schema.SCHEDULERS
    # Every registered mapper is accepted under its own name, and nothing else is a target.
    assert all(schema.SCHEDULERS[name] == name for name in mapper_names())
    assert set(schema.SCHEDULERS.values()) == set(mapper_names())
    # The only extra spellings are the original's list names, each pointing at a registered mapper.
    assert set(schema.SCHEDULERS) - set(mapper_names()) <= {"heft_balance"}


def test_scheduler_aliases_follow_the_registry() -> None:
    assert schema.scheduler_names(["heft", "heft_modified"])["heft_balance"] == "heft_modified"
    assert schema.scheduler_names(["heft", "heft_modified", "heft_balance"])["heft_balance"] == "heft_balance"
    assert "heft_balance" not in schema.scheduler_names(["heft"])


def test_table_defaults_are_what_an_empty_config_parses_to(tmp_path: Path) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text("[CONFIG]\n")
    parsed = parse_config(path)
    built = JupiterConfig()
    for setting in SETTINGS:
        if setting.field is not None:
            assert _get(parsed, setting.field) == setting.default, setting.key
            assert _get(built, setting.field) == setting.default, setting.key


# Defaults the docs describe in words, or that are empty, have no text to read back.
WRITTEN_DEFAULTS = [
    s for s in SETTINGS if s.field is not None and s.shown_default is None and s.kind.show(s.default) != ""
]


@pytest.mark.parametrize("setting", WRITTEN_DEFAULTS, ids=lambda s: s.key)
def test_a_shown_default_reads_back_as_the_default(setting: schema.Setting) -> None:
    assert setting.kind.parse(setting.kind.show(setting.default), _lists) == setting.default


def test_docs_table_is_generated_from_the_schema() -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin = text.index(schema.BEGIN_MARKER) + len(schema.BEGIN_MARKER)
    end = text.index(schema.END_MARKER)
    assert text[begin:end] == "\n" + markdown_table(), (
        "docs/formats.md is out of date: run `python -m jupiter.model.schema --write docs/formats.md`"
    )


def test_markdown_table_has_one_row_per_setting() -> None:
    rows = markdown_table().splitlines()
    assert rows[0] == "| section | key | value | meaning | default |"
    assert len(rows) == 2 + len(SETTINGS)
    assert rows[2] == (
        "| `[CONFIG]` | `STATIC_MAPPING` | 0 or 1 | 1 = take the mapping from a file (`[DEPLOY] MAPPING`), "
        "no profiling or mapping | 0 |"
    )
    sizes = next(row for row in rows if "`NETWORK_SIZES`" in row)
    assert sizes.endswith("| 1K 10K 100K 1M |")


def test_write_mode_replaces_only_the_marked_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "formats.md"
    doc.write_text(f"# Title\n{schema.BEGIN_MARKER}\nold table\n{schema.END_MARKER}\nafter\n")
    assert schema.main(["--write", str(doc)]) == 0
    assert doc.read_text() == f"# Title\n{schema.BEGIN_MARKER}\n{markdown_table()}{schema.END_MARKER}\nafter\n"
    assert schema.main([]) == 0
    assert capsys.readouterr().out == markdown_table()
    doc.write_text("no markers\n")
    assert schema.main(["--write", str(doc)]) == 2
    assert "settings:begin" in capsys.readouterr().err
    assert schema.main(["--nope"]) == 2


def test_plugin_keys_take_a_factory_syntax_only() -> None:
    plugins = [setting.key for setting in SETTINGS if isinstance(setting.kind, Plugin)]
    assert plugins == ["TRANSFER", "PROFILER"]
    kind = setting_of("CONFIG", "TRANSFER").kind
    assert kind.parse("nosuchmodule:Copy", _lists) == "nosuchmodule:Copy"
    assert kind.parse("0", lambda _: {"SCP": 0}) == "scp"


def test_line_of_names_the_line_of_a_key(tmp_path: Path) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text("[CONFIG]\nSCHEDULER = heft\n\n[DEPLOY]\n  backend = mesos\n")
    config = parse_config(path)
    assert config.line_of("DEPLOY", "BACKEND") == 5
    assert config.line_of("DEPLOY", "backend") == 5
    assert config.line_of("DEPLOY") == 4
    assert config.line_of("CONFIG", "PRICING") is None
    assert config.line_of("NOSUCH", "KEY") is None


@pytest.mark.parametrize(("value", "expected"), [("mesos", "mesos"), ("Docker", "docker"), ("my_cloud2", "my_cloud2")])
def test_backend_is_any_plain_name(tmp_path: Path, value: str, expected: str) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(f"[DEPLOY]\nBACKEND = {value}\n")
    assert parse_config(path).deploy.backend == expected


def test_backend_that_is_not_a_name(tmp_path: Path) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text("[DEPLOY]\nBACKEND = my-cloud\n")
    with pytest.raises(InputError) as caught:
        parse_config(path)
    assert str(caught.value) == (
        f"{path}:2: BACKEND: 'my-cloud' is not a backend name; use lower-case letters, digits and '_' "
        "(e.g. local, docker, kubernetes)"
    )
