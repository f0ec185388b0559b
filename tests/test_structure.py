"""The package's shape: no import cycles, a loop that knows no plug-ins, one event table that the
docs and the loop agree with, and the callback registry's contract."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learnloop as ll
from learnloop import loop
from learnloop.events import BATCH_EVENTS, EVENT_TABLE, EVENTS, PHASES, phase_events

from .conftest import tiny_dls

PKG = Path(ll.__file__).parent
ROOT = PKG.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in the file, TYPE_CHECKING blocks too).

    `from .a import b` counts as importing `a.b` when that is a module, else `a`. The parent
    packages Python runs on the way are not counted: every module has those.
    """
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in files else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def test_no_module_imports_a_module_that_imports_it_back():
    graph = _import_graph()
    assert "learnloop.loop" in graph and "learnloop.callbacks.recorder" in graph  # the walk found the package
    cycles = sorted(m for m in graph if m in _reachable(graph, m))
    assert cycles == []


def _layers() -> list[list[str]]:
    """ARCHITECTURE.md's table, top to bottom: the module names (or package prefixes) of each row."""
    rows = re.findall(r"^\|[^|]*\|([^|]+)\|[^|]+\|$", (ROOT / "ARCHITECTURE.md").read_text(), flags=re.M)
    layers = []
    for cell in rows[1:]:  # the first row is the header
        names = re.findall(r"`([\w/]+?)(?:\.py)?`", cell)
        layers.append([f"learnloop.{n.strip('/').replace('/', '.')}" if n != "__init__" else "learnloop" for n in names])
    return layers


def test_architecture_md_order_matches_the_imports():
    rank = {}
    for i, names in enumerate(_layers()):
        for n in names:
            rank[n] = i

    def rank_of(module: str) -> int:
        for name in (module, module.rpartition(".")[0]):  # a module, or its package's row (callbacks/)
            if name in rank:
                return rank[name]
        raise AssertionError(f"{module} is not in ARCHITECTURE.md's table")

    graph = _import_graph()
    upward = [(m, d) for m, deps in graph.items() if m not in ("learnloop.callbacks", "learnloop.schedule", "learnloop.data")
              for d in deps if rank_of(d) < rank_of(m)]  # fmt: skip
    assert upward == []


def test_the_loop_imports_the_protocol_and_no_callback():
    graph = _import_graph()
    assert _reachable(graph, "learnloop.loop") <= {"learnloop.events", "learnloop.checks", "learnloop.utils", "learnloop.distributed"}
    # Callbacks import the loop for real: no TYPE_CHECKING detour back to the learner.
    for name in ("recorder", "device", "guards", "progress", "telemetry", "training", "transforms"):
        assert "learnloop.loop" in graph[f"learnloop.callbacks.{name}"]
        assert "learnloop.learner" not in _reachable(graph, f"learnloop.callbacks.{name}")
    assert "learnloop.learner" not in _reachable(graph, "learnloop.schedule.recipes")


def test_the_loop_module_stays_small():
    assert len(Path(loop.__file__).read_bytes()) <= 10_240


def test_no_library_code_reads_an_objects___dict__():
    # In CPython 3.11, reading `obj.__dict__` moves the object's attributes into a real dict for
    # good, after which every attribute read and method call on it is slower. The learner and its
    # callbacks are read on every batch: `getattr(obj, name, None)` asks the same question.
    found = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "__dict__":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"reads of __dict__: {found}"


def test_attaching_callbacks_keeps_the_learners_attributes_fast():
    # The learner's attributes stay where CPython reads them fastest (see above): after a fit
    # with the default callbacks, reading them specialises exactly as on a plain object. Before
    # 2026-12-06 the learner's dict was materialised, and such a read took about 3x as long.
    # In a fresh process: CPython 3.11 keeps at most 30 attribute names per class in that fast
    # layout, and this suite's many learners, with their many callback names, use them up.
    script = """
import dis, torch, learnloop as ll
from torch import nn

class Plain:
    def __init__(self):
        self.xb, self.model, self.training = 1, 2, 3

x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
learn = ll.Learner(nn.Linear(4, 3), ll.DataLoaders.from_tensors(x, y, x, y, batch_size=4), progress=False)
learn.fit(1, cbs=[ll.Callback()])  # attached and removed again
assert learn.device == torch.device("cpu") and isinstance(learn.validate(), dict)

def specialised(obj):
    scope = {}
    exec(compile("def reads(o):\\n    return o.xb, o.model, o.training\\n", "<reads>", "exec"), scope)
    for _ in range(64):  # enough runs for CPython to specialise the reads
        scope["reads"](obj)
    return {i.opname for i in dis.get_instructions(scope["reads"], adaptive=True) if i.opname.startswith("LOAD_ATTR")}

got, plain = specialised(learn), specialised(Plain())
assert got == plain, (got, plain)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_every_phase_has_its_three_events_in_the_table():
    for phase in PHASES:
        before, cancelled, after = phase_events(phase)
        assert EVENTS.index(before) < EVENTS.index(cancelled) < EVENTS.index(after)


def test_docs_list_the_event_table_in_order():
    text = (ROOT / "docs" / "events.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|$", text, flags=re.M)
    assert rows == list(EVENT_TABLE.items())


def _mentioned(text: str) -> set[str]:
    return {e for e in re.findall(r"\b(?:before|after)_\w+", text) if e in EVENT_TABLE}


def test_loop_diagrams_name_every_event_that_is_not_a_cancellation():
    plain = {e for e in EVENTS if not e.startswith("after_cancel_")}
    assert _mentioned(loop.__doc__) == plain
    docs = (ROOT / "docs" / "events.md").read_text()
    diagram = docs.split("```")[3]  # the second code block: the nested phases
    assert _mentioned(diagram) == plain


def test_show_order_follows_the_event_table(capsys):
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls())
    events = [line.split()[0] for line in learn.show_order().splitlines()]
    assert events == [e for e in EVENTS if e in events] and "before_batch" in events


def test_removing_a_callback_clears_its_learner_reference():
    cb = ll.Callback()
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[cb])
    assert cb.learn is learn and learn.callback is cb
    learn.remove_cbs([cb])
    assert cb.learn is None and not hasattr(learn, "callback") and cb not in learn.cbs


class _First(ll.Callback):
    run_before = ("_Second",)


class _Second(ll.Callback):
    run_before = ("_First",)


def test_an_ordering_cycle_attaches_nothing_and_later_fits_work():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(), progress=False)
    before = list(learn.cbs)
    for attach in (lambda cbs: learn.add_cbs(cbs), lambda cbs: learn.fit(1, cbs=cbs)):
        with pytest.raises(ValueError, match="cycle among: _First, _Second"):
            attach([_First(), _Second()])
        assert learn.cbs == before and not hasattr(learn, "_first")
    learn.fit(1)
    assert len(learn.recorder.history) == 1


def test_run_valid_false_skips_only_validation_batch_events():
    class TrainOnly(ll.Callback):
        run_valid = False

        def __init__(self):
            self.seen = []

        def before_batch(self, learn):
            self.seen.append(("before_batch", learn.training))

        def after_batch(self, learn):
            self.seen.append(("after_batch", learn.training))

        def after_epoch(self, learn):
            self.seen.append(("after_epoch", learn.training))

    cb = TrainOnly()
    ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=4, n_valid=4, bs=2), default_cbs=False, cbs=[cb]).fit(1)
    assert cb.seen == [("before_batch", True), ("after_batch", True)] * 2 + [("after_epoch", False)]

    class ValidOnly(ll.Callback):
        run_train = False

        def __init__(self):
            self.phases = []

        def after_loss(self, learn):
            self.phases.append(learn.training)

    cb = ValidOnly()
    ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=4, n_valid=4, bs=2), default_cbs=False, cbs=[cb]).fit(1)
    assert cb.phases == [False]  # one validation batch (validation batches are twice as big)
    assert set(BATCH_EVENTS) == {"before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward",
                                 "after_backward", "before_step", "after_cancel_step", "after_step", "after_cancel_batch", "after_batch"}  # fmt: skip


def test_validate_without_a_recorder_matches_a_hand_computation():
    dls = tiny_dls(n_train=6, n_valid=5, bs=2)  # batches of 2, 2, 1: the last one must weigh less
    learn = ll.Learner(nn.Linear(4, 3), dls, default_cbs=False, metrics=[ll.accuracy])
    got = learn.validate()
    xs, ys = zip(*[(xb, yb) for xb, yb in dls.valid])
    x, y = torch.cat(xs), torch.cat(ys)
    with torch.no_grad():
        pred = learn.model(x)
    assert got["valid_loss"] == pytest.approx(F.cross_entropy(pred, y).item(), rel=1e-6)
    assert got["accuracy"] == pytest.approx((pred.argmax(1) == y).float().mean().item())
    with_recorder = ll.Learner(learn.model, dls, progress=False, metrics=[ll.accuracy]).validate()
    assert with_recorder == pytest.approx(got)


@pytest.mark.parametrize("foreign, ours", [("on_epoch_end", "after_epoch"), ("on_train_batch_end", "after_batch"), ("on_batch_begin", "before_batch")])
def test_another_librarys_event_names_are_rejected_with_ours(foreign, ours):
    cls = type("Ported", (ll.Callback,), {foreign: lambda self, *a: None})
    with pytest.raises(ValueError, match=f"Ported.{foreign} is another library's event name.*'{ours}'"):
        ll.Learner(nn.Linear(4, 3), tiny_dls(), cbs=[cls()])


def test_helper_methods_named_on_something_are_allowed():
    class Helper(ll.Callback):
        def on_gpu(self):
            return False

    ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False, cbs=[Helper()]).fit(1)


def test_learn_device_is_a_torch_device_and_train_batches_done_counts():
    learn = ll.Learner(nn.Linear(4, 3), tiny_dls(n_train=6, bs=2), device="cpu", progress=False)
    assert learn.device == torch.device("cpu") and isinstance(learn.device_cb, ll.DeviceCallback)
    learn.fit(2)
    assert learn.train_batches_done == learn.n_iter == 6
    bare = ll.Learner(nn.Linear(4, 3), tiny_dls(), default_cbs=False)
    assert bare.device == torch.device("cpu")
