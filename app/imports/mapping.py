"""Source classes to taxonomy types: by name, or as `--map SRC=DST` says; never a guess.

A class whose name is a taxonomy key, ignoring case ("Hole"), maps by itself. Any other
needs `--map` ("--map Knot=snag"); without one the import stops before anything is
written and lists every such class with its counts, and a close taxonomy key where one
is near ("Missing Button" -> missing_button). `--skip-unknown` leaves such classes' boxes
out instead, and says how many. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class MappingError(ValueError):
    """The classes do not map; the message lists them and the fix."""


@dataclass
class ClassCount:
    boxes: int = 0
    images: int = 0  # images the class appears on (as a box or as the image's label)


@dataclass(frozen=True)
class ClassMap:
    targets: dict[str, str]  # source class, as written -> taxonomy key
    skipped: frozenset[str]  # unmapped classes left out (--skip-unknown)
    unused: tuple[str, ...] = ()  # --map sources that name no class of the export

    def target(self, source: str) -> str | None:
        """The taxonomy key of a source class; None for a skipped one."""
        if source in self.skipped:
            return None
        return self.targets[source]


def parse_pairs(values: Iterable[str], option: str) -> list[tuple[str, str]]:
    """`SRC=DST` pairs of a repeated option, in order."""
    pairs = []
    for value in values:
        source, sep, target = value.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise MappingError(f"{option} takes SRC=DST (e.g. {option} Knot=snag); not {value!r}")
        pairs.append((source.strip(), target.strip()))
    return pairs


def parse_id_map(values: Iterable[str]) -> dict[int, str]:
    """`--id-map N=NAME` as {N: NAME}."""
    out = {}
    for source, target in parse_pairs(values, "--id-map"):
        if not re.fullmatch(r"\d+", source):
            raise MappingError(
                f"--id-map takes a class id and a name (--id-map 5=hole); not {source!r}"
            )
        out[int(source)] = target
    return out


def resolve(
    classes: Mapping[str, ClassCount],
    type_keys: Sequence[str],
    maps: Sequence[tuple[str, str]],
    *,
    skip_unknown: bool,
) -> ClassMap:
    """Map every source class or raise MappingError naming the ones that do not map."""
    keys = {k.lower(): k for k in type_keys}
    chosen: dict[str, str] = {}
    for source, target in maps:
        if target.lower() not in keys:
            raise MappingError(
                f"--map {source}={target}: {target!r} is not a defect type; "
                f"the taxonomy has {', '.join(type_keys)}"
            )
        chosen[source.lower()] = keys[target.lower()]
    targets: dict[str, str] = {}
    unknown: list[str] = []
    for name in classes:
        mapped = chosen.get(name.lower()) or keys.get(name.lower())
        if mapped is None:
            unknown.append(name)
        else:
            targets[name] = mapped
    lowered = {name.lower() for name in classes}
    unused = tuple(source for source, _ in maps if source.lower() not in lowered)
    if unknown and not skip_unknown:
        raise MappingError(_unknown_message(unknown, classes, type_keys))
    return ClassMap(targets, frozenset(unknown), unused)


def _unknown_message(
    unknown: list[str], classes: Mapping[str, ClassCount], type_keys: Sequence[str]
) -> str:
    width = max(len(name) for name in unknown)
    lines = ["these classes are not defect types, and no --map names them:"]
    for name in sorted(unknown, key=lambda n: (-classes[n].boxes - classes[n].images, n)):
        count = classes[name]
        what = f"{count.boxes} boxes on {count.images} images" if count.boxes else (
            f"{count.images} images")  # fmt: skip
        near = suggestion(name, type_keys)
        hint = f"   did you mean --map '{name}={near}'?" if near else ""
        lines.append(f"  {name:<{width}}  {what}{hint}")
    lines.append(
        "map each with --map CLASS=TYPE (--map Knot=snag), or pass --skip-unknown to leave "
        f"them out; the defect types are {', '.join(type_keys)}"
    )
    return "\n".join(lines)


def suggestion(name: str, type_keys: Sequence[str]) -> str | None:
    """A taxonomy key close to a class name, for the message only (never applied)."""
    squashed = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if squashed in type_keys:
        return squashed
    close = difflib.get_close_matches(squashed, type_keys, n=1, cutoff=0.75)
    return close[0] if close else None
