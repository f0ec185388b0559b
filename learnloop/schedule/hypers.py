"""One vocabulary for hyper-parameters across optimizers.

learnloop calls them `lr`, `mom`, `sqr_mom`, `wd`, `eps`. torch.optim spells them differently
(`momentum` or `betas[0]`, `betas[1]` or RMSprop's `alpha`, `weight_decay`); learnloop's own
optimizers use our names directly. Schedulers, the Recorder and the LR finder go through here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hyper_names", "get_hyper", "set_hyper", "locations"]

# Our name -> where it lives in a torch param group, tried in order: key, or (key, index in tuple).
_LOCATIONS: dict[str, tuple[Any, ...]] = {
    "lr": ("lr",),
    "mom": ("mom", "momentum", ("betas", 0)),
    "sqr_mom": ("sqr_mom", ("betas", 1), "alpha"),
    "wd": ("wd", "weight_decay"),
    "eps": ("eps",),
}


def _where(group: dict, name: str) -> Any:
    for loc in _LOCATIONS.get(name, (name,)):
        key = loc[0] if isinstance(loc, tuple) else loc
        if key in group:
            return loc
    return None


def locations(group: dict) -> dict[str, Any]:
    """Our name -> its location in this group: a key, or (key, index) for a tuple like betas."""
    return {n: loc for n in _LOCATIONS if (loc := _where(group, n)) is not None}


def hyper_names(group: dict) -> list[str]:
    """Our names for the hyper-parameters this param group has."""
    return [n for n in _LOCATIONS if _where(group, n) is not None]


def get_hyper(group: dict, name: str) -> float:
    """Hyper-parameter `name` (learnloop's name: lr, mom, ...) of a param group; KeyError if absent."""
    loc = _where(group, name)
    if loc is None:
        raise KeyError(name)
    return group[loc[0]][loc[1]] if isinstance(loc, tuple) else group[loc]


def set_hyper(group: dict, name: str, value: float) -> None:
    """Set hyper-parameter `name` in a param group; a clear error if the optimizer lacks it."""
    loc = _where(group, name)
    if loc is None:
        raise KeyError(
            f"This optimizer has no hyper-parameter {name!r}; it has {hyper_names(group)} "
            f"(learnloop names: lr, mom, sqr_mom, wd, eps)."
        )
    if isinstance(loc, tuple):
        key, i = loc
        values = list(group[key])
        values[i] = value
        group[key] = type(group[key])(values)
    else:
        group[loc] = value
