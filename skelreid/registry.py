"""A plain name -> object registry with an error that lists the valid names."""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> None:
        key = name.lower()
        if key in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[key] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[str(name).lower()]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return str(name).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
