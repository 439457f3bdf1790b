"""Real recordings contain a few short, empty or broken walks: leave them out, say so, count them.

:func:`exclude_unusable` runs before windowing. With ``short_walks="skip"`` (the default):

* a walk too short for one window once ``clip`` frames are dropped at each end (an empty walk,
  e.g. one whose frames were all untracked, included) is left out;
* a person then left with fewer walks than the protocol needs (legacy: ``test_walks + 1``;
  probe/gallery: 3; predefined splits: one training walk) is left out;
* one warning line says how many of each and names the first few files;
* fewer than two persons left is an error.

With ``short_walks="error"`` the first short walk is an error naming its file, as is a person
with too few walks (raised by the split functions). What was left out is recorded in the run's
split manifest (``excluded``), ``results.json`` and ``results.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .records import Sequence, natural_key
from .windows import short_walk_error, too_short

SHOWN = 3   # file names in the warning line


@dataclass
class Exclusions:
    """What :func:`exclude_unusable` left out."""

    short_walks: list[dict] = field(default_factory=list)       # {walk, source, frames}
    persons: list[dict] = field(default_factory=list)           # {person, walks, needed}

    def __bool__(self) -> bool:
        return bool(self.short_walks or self.persons)

    def to_dict(self) -> dict:
        return {"short_walks": len(self.short_walks), "short_walk_ids": [w["walk"] for w in self.short_walks],
                "persons_dropped": len(self.persons), "persons_dropped_ids": [p["person"] for p in self.persons]}

    def warning(self, length: int, clip: int) -> str:
        parts = []
        if self.short_walks:
            names = ", ".join(f"{w['source'] or w['walk']} ({w['frames']} frames)" for w in self.short_walks[:SHOWN])
            more = f" and {len(self.short_walks) - SHOWN} more" if len(self.short_walks) > SHOWN else ""
            parts.append(f"skipped {len(self.short_walks)} walk(s) too short for one window of {length} frames "
                         f"after dropping {clip} at each end: {names}{more}")
        if self.persons:
            names = ", ".join(f"{p['person']} ({p['walks']} usable walk(s), {p['needed']} needed)"
                              for p in self.persons[:SHOWN])
            more = f" and {len(self.persons) - SHOWN} more" if len(self.persons) > SHOWN else ""
            parts.append(f"left out {len(self.persons)} person(s) with too few walks: {names}{more}")
        return "; ".join(parts) + " (--short-walks error refuses such data instead)"


def walks_needed(protocol: str, test_walks: int = 1) -> int:
    """Walks a person needs for a random split of ``protocol``."""
    return test_walks + 1 if protocol == "legacy" else 3


def exclude_unusable(sequences: list[Sequence], length: int, clip: int, policy: str = "skip",
                     needed: int = 1) -> tuple[list[Sequence], Exclusions]:
    """Drop short walks, then persons with fewer than ``needed`` walks (see the module docs)."""
    if sequences and all(too_short(s, length, clip) for s in sequences):
        longest = max(s.num_frames for s in sequences)
        raise ConfigError(f"window length {length} with clip {clip} leaves no window: the longest walk has "
                          f"{longest} frames")
    ex = Exclusions()
    kept = []
    for s in sorted(sequences, key=lambda s: (natural_key(s.person), natural_key(s.walk))):
        if too_short(s, length, clip):
            if policy == "error":
                raise short_walk_error(s, length, clip)
            ex.short_walks.append({"walk": s.walk_id, "source": s.source, "frames": s.num_frames})
        else:
            kept.append(s)
    if policy == "skip":
        kept, dropped = drop_thin_persons(kept, needed, sequences)
        ex.persons += dropped
    return kept, ex


def drop_thin_persons(sequences: list[Sequence], needed: int, everything: list[Sequence] | None = None
                      ) -> tuple[list[Sequence], list[dict]]:
    """Leave out the persons with fewer than ``needed`` walks in ``sequences`` (persons that only
    appear in ``everything``, all of whose walks were short, are counted too)."""
    count: dict[str, int] = {}
    for s in sequences:
        count[s.person] = count.get(s.person, 0) + 1
    for s in everything or []:
        count.setdefault(s.person, 0)
    thin = sorted((p for p, n in count.items() if n < needed), key=natural_key)
    dropped = [{"person": p, "walks": count[p], "needed": needed} for p in thin]
    return [s for s in sequences if s.person not in set(thin)], dropped


def check_enough_persons(sequences: list[Sequence], ex: Exclusions) -> None:
    persons = {s.person for s in sequences}
    if len(persons) < 2:
        what = (f" after leaving out {len(ex.short_walks)} short walk(s) and {len(ex.persons)} person(s)"
                if ex else "")
        raise ConfigError(f"{len(persons)} person(s) left{what}: re-identification needs at least two")
