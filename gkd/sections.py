"""The settings' nested layout: sections (``data``, ``model``, ``teacher``, ``student``, ``setting``, ``run``, ...)
over the flat fields of a config dataclass.

A YAML config (and a mapping given to :func:`gkd.config.make_config`) may be written in this layout::

    data: {dataset: Cora, split: "per-class:20/30"}
    teacher: {model: sage, count: 3, batch_size: 1024}
    student: {method: gkd, terms: [position, neighbour], batch_size: 4096}
    setting: {name: inductive}
    run: {runs: 10, device: cpu}

or with the flat keys configs were written with before (``dataset: Cora``, ``teacher: sage``, ``teachers: 3``,
``batch_size: 1024``, ``student_batch_size: 4096``, ``setting: inductive``), which keep working: both read into the
same flat, validated settings object, so a config moved from one layout to the other runs bit for bit as before.
Inside a section a key has one meaning: ``teacher.batch_size`` and ``student.batch_size``, ``teacher.method`` and
``student.method``, GAT's ``model.heads`` and MHGD's ``builder.heads`` are different settings, which flat names
had to spell out (or could not). A section named like a flat field (``model: gat``, ``teacher: sage``,
``setting: inductive``) is that field when its value is not a mapping.

Each config class lists its layout in ``SECTIONS = {section: {key: flat field}}``; every field sits in exactly one
section (``tests/test_sections.py`` checks it).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .errors import ConfigError, check

__all__ = ["flatten", "nest", "layout_problems"]


def flatten(cls: type, raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``raw`` (nested, flat, or both) as flat field names. A field set twice (flat and in a section, or by two
    keys) and an unknown key inside a section are errors naming ``source``; unknown flat keys are left for the
    caller, which names every known key."""
    sections: dict[str, dict[str, str]] = getattr(cls, "SECTIONS", {})
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    where: dict[str, str] = {}

    def put(name: str, value: Any, key: str) -> None:
        if value is None and name in out:  # None is "not given" (a flag left out): it sets nothing
            return
        check(out.get(name) is None, f"{source}: {where.get(name)} and {key} both set {name}; expected one of them",
              ConfigError)
        out[name], where[name] = value, key

    for key, value in raw.items():
        key = str(key)
        table = sections.get(key)
        if table is not None and (isinstance(value, Mapping) or key not in fields):
            value = {} if value is None else value
            check(isinstance(value, Mapping), f"{source}: {key}={value!r}; expected a mapping (the {key} section, "
                  f"keys {', '.join(table)})", ConfigError)
            unknown = sorted(set(map(str, value)) - set(table))
            check(not unknown, f"{source}: section {key!r} has unknown key(s) {unknown}; known keys: "
                  f"{', '.join(table)}", ConfigError)
            for k, v in value.items():
                put(table[str(k)], v, f"{key}.{k}")
        else:
            put(key, value, key)
    return out


def nest(cfg: Any) -> dict[str, dict[str, Any]]:
    """``cfg``'s values in its class's nested layout (what a nested YAML config for it would hold)."""
    values = dataclasses.asdict(cfg)
    return {section: {key: values[name] for key, name in table.items()}
            for section, table in type(cfg).SECTIONS.items()}


def layout_problems(cls: type) -> list[str]:
    """What is wrong with ``cls.SECTIONS``: fields in no section or in two, names that are not fields."""
    fields = [f.name for f in dataclasses.fields(cls)]
    placed = [name for table in cls.SECTIONS.values() for name in table.values()]
    return ([f"field {n!r} is in no section" for n in fields if n not in placed]
            + [f"field {n!r} is in {placed.count(n)} places" for n in sorted(set(placed)) if placed.count(n) > 1]
            + [f"{n!r} is not a field" for n in placed if n not in fields])
