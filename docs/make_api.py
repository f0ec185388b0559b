"""Write docs/api.md, the API reference, from the docstrings and signatures.

    python docs/make_api.py           # rewrite docs/api.md
    python docs/make_api.py --check   # exit 1 if docs/api.md is out of date (a test runs this)

Every name in `learnloop.__all__` and in the `__all__` of each public submodule is listed under
the module that defines it, with its signature and docstring; a class also lists its public
methods and properties.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

MODULES = [
    "learnloop", "learnloop.learner", "learnloop.loop", "learnloop.events", "learnloop.callbacks", "learnloop.data",
    "learnloop.datasets", "learnloop.vision", "learnloop.schedule", "learnloop.optim", "learnloop.losses", "learnloop.init",
    "learnloop.layers", "learnloop.norm", "learnloop.hooks", "learnloop.diagnostics", "learnloop.metrics",
    "learnloop.checkpoint", "learnloop.export", "learnloop.distributed", "learnloop.gan", "learnloop.plots", "learnloop.utils",
]  # fmt: skip
OUT = Path(__file__).with_name("api.md")


class _Named:
    """Shows a default value by name, where its repr differs between machines or runs."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _stable(value: object) -> object:
    from learnloop.vision import image_extensions

    if value is image_extensions:  # read from the machine's MIME database: differs between machines
        return _Named("image_extensions")
    if isinstance(value, (set, frozenset)):
        return _Named("{" + ", ".join(sorted(map(repr, value))) + "}")
    return value


def signature(obj: object) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    sig = sig.replace(parameters=[p.replace(default=_stable(p.default)) for p in sig.parameters.values()])
    return re.sub(r" at 0x[0-9a-f]+", "", str(sig))  # default values that are functions: no addresses


def doc(obj: object) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else "(no docstring)"


def members(cls: type) -> list[tuple[str, object]]:
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(value, property) or inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
            out.append((name, value))
    return out


def describe(name: str, obj: object) -> list[str]:
    alias = hasattr(obj, "__origin__")  # a typing alias such as Callable[[float], float]
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) and not alias else "constant"
    lines = [f"### `{name}`", ""]
    if kind == "constant":
        text = re.sub(r" at 0x[0-9a-f]+", "", repr(_stable(obj)))
        if text == "image_extensions":
            text = "frozenset of every file extension whose MIME type is image/* (from the mimetypes database)"
        lines += [f"`{text if len(text) < 120 else text[:117] + '...'}`", ""]
        return lines
    lines += [f"```\n{kind} {name}{signature(obj)}\n```", "", doc(obj), ""]
    if kind == "class":
        for m_name, m in members(obj):
            target = m.fget if isinstance(m, property) else m.__func__ if isinstance(m, (classmethod, staticmethod)) else m
            head = f"`{m_name}`" + ("" if isinstance(m, property) else f"`{signature(target)}`".replace("``", ""))
            first = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
            lines.append(f"- {head}{' (property)' if isinstance(m, property) else ''}: {first}" if first else f"- {head}")
        lines.append("")
    return lines


def build() -> str:
    # Each object once, under the module that defines it (a constant: the last module listing it).
    exported: dict[int, tuple[str, object, list[str]]] = {}
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not inspect.ismodule(obj):
                exported.setdefault(id(obj), (name, obj, []))[2].append(mod_name)
    sections: dict[str, list[tuple[str, object]]] = {}
    for name, obj, listed_in in exported.values():
        defined = getattr(obj, "__module__", None) if (inspect.isclass(obj) or inspect.isfunction(obj)) else None
        home = next((m for m in reversed(MODULES) if defined and (defined == m or defined.startswith(m + "."))), listed_in[-1])
        sections.setdefault(home, []).append((name, obj))
    out = ["# API reference", "", "Generated from the docstrings by `python docs/make_api.py`; a test fails when it is out of date.",
           "Names exported from `learnloop` itself are reachable as `ll.<name>` after `import learnloop as ll`.", ""]  # fmt: skip
    top = set(importlib.import_module("learnloop").__all__)
    out += ["## Contents", ""] + [f"- [`{m}`](#{m.replace('.', '')}) ({len(sections[m])} names)" for m in MODULES if m in sections] + [""]
    for mod_name in MODULES:
        if mod_name not in sections:
            continue
        mod = importlib.import_module(mod_name)
        summary = (mod.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        out += [f"## {mod_name}", "", summary, ""]
        for name, obj in sorted(sections[mod_name], key=lambda t: t[0].lower()):
            lines = describe(name, obj)
            if name in top and mod_name != "learnloop":
                lines[0] += " (also `ll." + name + "`)"
            out += lines
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/make_api.py", file=sys.stderr)
            sys.exit(1)
    else:
        OUT.write_text(text)
        print(f"wrote {OUT} ({text.count(chr(10) + '### ')} names)")
