"""Writes `app/settings_types.py`, the typed form of the settings declared in
`app/settings.py`: one frozen dataclass per section, `SettingsSnapshot` holding
them all, and `Key`, the names for writing and subscribing.

    python -m app.settings_codegen          rewrite app/settings_types.py
    python -m app.settings_codegen --check  exit 1 when it is out of date

A test runs the check, so a setting added, renamed or given a new default in
`app/settings.py` fails the suite until the typed form is regenerated.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from app.settings import SETTINGS, Setting

TARGET = Path(__file__).with_name("settings_types.py")

_HEADER = '''\
"""Hearth's settings, typed: generated from the declarations in app/settings.py
by `python -m app.settings_codegen`. Do not edit; a test fails when it is stale.

Read settings through `Settings.snapshot()` (a `SettingsSnapshot`, immutable,
taken at the moment it is asked for); write and subscribe with a `Key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, cast

'''

_HELPERS = '''

def _bool(value: object) -> bool:
    assert isinstance(value, bool), value
    return value


def _int(value: object) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), value
    return value


def _float(value: object) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return float(value)


def _str(value: object) -> str:
    assert isinstance(value, str), value
    return value
'''


def _sections() -> dict[str, list[Setting]]:
    sections: dict[str, list[Setting]] = {}
    for setting in SETTINGS:
        section, _, _ = setting.key.partition(".")
        sections.setdefault(section, []).append(setting)
    return sections


def _class_name(section: str) -> str:
    return section.capitalize() + "Settings"


def _choice_type(setting: Setting) -> str:
    return "".join(part.capitalize() for part in setting.key.replace(".", "_").split("_"))


def _annotation(setting: Setting) -> str:
    if setting.choices:
        return _choice_type(setting)
    return setting.type.__name__


def _constant(setting: Setting) -> str:
    return setting.key.replace(".", "_").upper()


def _q(value: object) -> str:
    """A value as Python source, strings in double quotes like the rest of Hearth."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def render() -> str:
    out = [_HEADER]
    for setting in SETTINGS:
        if setting.choices:
            values = ", ".join(_q(c) for c in setting.choices)
            out.append(f"{_choice_type(setting)} = Literal[{values}]\n")
    out.append("\n\nclass Key(StrEnum):\n")
    out.append('    """A setting\'s name, for Settings.set and Settings.subscribe."""\n\n')
    for setting in SETTINGS:
        out.append(f"    {_constant(setting)} = {_q(setting.key)}\n")
    for section, settings in _sections().items():
        out.append(f"\n\n@dataclass(frozen=True)\nclass {_class_name(section)}:\n")
        out.append(f'    """The {section}.* settings."""\n')
        for setting in settings:
            name = setting.key.split(".", 1)[1]
            out.append("\n")
            for line in textwrap.wrap(setting.description, 92):
                out.append(f"    #: {line}\n")
            out.append(f"    {name}: {_annotation(setting)} = {_q(setting.default)}\n")
    out.append("\n\n@dataclass(frozen=True)\nclass SettingsSnapshot:\n")
    out.append('    """Every setting at one moment; the defaults when built with no '
               'arguments."""\n\n')
    for section in _sections():
        out.append(f"    {section}: {_class_name(section)} = "
                   f"field(default_factory={_class_name(section)})\n")
    out.append("\n    @classmethod\n")
    out.append("    def from_values(cls, v: Mapping[str, bool | int | float | str]) -> "
               "SettingsSnapshot:\n")
    out.append('        """Built from validated values by key (Settings holds them so)."""\n')
    out.append("        return cls(\n")
    for section, settings in _sections().items():
        out.append(f"            {section}={_class_name(section)}(\n")
        for setting in settings:
            name = setting.key.split(".", 1)[1]
            read = f"_{setting.type.__name__}(v[{_q(setting.key)}])"
            if setting.choices:
                read = f"cast({_choice_type(setting)}, {read})"
            out.append(f"                {name}={read},\n")
        out.append("            ),\n")
    out.append("        )\n\n\n")
    out.append("DEFAULTS = SettingsSnapshot()\n")
    out.append(_HELPERS)
    return "".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date; run `python -m app.settings_codegen`.",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
