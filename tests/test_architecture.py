"""The shape of the package, read from its source with :mod:`ast` (issue 12).

- no import cycle among the modules of the core;
- the import direction of docs/architecture.md: base <- pki <- mailroot <-
  checks <- flows <- dashboard / classroom / notebook / ui <- cli (a module
  never imports from a package to its right);
- no reach into another module's private names (``from x import _name`` or
  ``x._name``);
- imports at the top of a module: a function-level import only at the one
  boundary where it is the point (the command dispatcher imports the command
  it runs, through importlib) or for a heavy optional library whose cost was
  measured (listed below with the reason).

The widgets in ``ui/`` keep the same rules as the core.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import xmailnb

PKG = Path(xmailnb.__file__).resolve().parent

#: Left to right: a module may import from its own layer and those to its left.
LAYERS: dict[str, int] = {
    "": 0,  # the base: clock, errors, i18n, files, logs, status
    "pki": 1,
    "mailroot": 2,
    "checks": 3,
    "flows": 4,
    "classroom": 5,
    "dashboard": 5,
    "ui": 5,
    "notebook": 5,
    "cli": 6,
}

#: Function-level imports that are allowed, by (module, imported top-level
#: package), with the reason.
ALLOWED_LOCAL_IMPORTS: dict[tuple[str, str], str] = {
    ("xmailnb.i18n", "babel"): "a source checkout only: an installed product reads compiled .mo files",
    ("xmailnb.files", "platformdirs"): "only the default sandbox or log location needs it",
    ("xmailnb.files", "tempfile"): "writers only: ~3 ms of every start-up",
    ("xmailnb.logs", "logging"): "logging.handlers, for an internal error only: ~5 ms of every start-up",
    ("xmailnb.pki.certfiles", "cryptography"): "pkcs7/pkcs12 for such input only: pkcs7 brings email, ~5 ms",
    ("xmailnb.pki.certfiles", "asn1crypto"): "PKCS#12 and encrypted keys only: their hashing cost is read first",
    ("xmailnb.mailroot.store", "filelock"): "Windows only (POSIX locks with flock)",
    ("xmailnb.mailroot.store", "cryptography"): "the pair check after an unusable journal only",
    ("xmailnb.mailroot.store", "xmailnb"): "the pair check after an unusable journal only (pki.keys)",
    ("xmailnb.pki.chain", "certifi"): "fallback when the bundle is not found beside the package",
    ("xmailnb.pki.csr", "pycountry"): "CSR forms only: ~18 ms on every diagnosis otherwise",
    ("xmailnb.pki.csr", "email_validator"): "CSR forms only: brings dnspython, ~20 ms",
    ("xmailnb.cli.diagnose", "xmailnb"): "diagnose --probe only: sockets, threads, pyOpenSSL (figure 2)",
    ("xmailnb.ui.submit", "xmailnb"): "the ACME panel only when chosen: acme, josepy, requests (~95 ms of page open)",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}
TREES: dict[str, ast.Module] = {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in MODULES.items()}


def _package_of(mod: str) -> str:
    return mod if MODULES.get(mod, Path()).name == "__init__.py" else mod.rpartition(".")[0]


def _absolute(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(mod)
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _targets(mod: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for each alias."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    source = _absolute(mod, node)
    out = []
    for a in node.names:
        sub = f"{source}.{a.name}"
        out.append((sub, None) if sub in MODULES else (source, a.name))
    return out


def _is_core(mod: str) -> bool:
    """Every module of the package, the widgets included, keeps these rules."""
    return mod.startswith("xmailnb")


def _layer(mod: str) -> int:
    if mod == "xmailnb.__main__":
        return max(LAYERS.values())
    parts = mod.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(top_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, tree in TREES.items():
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, _ in _targets(mod, node):
                    if target in MODULES and target != mod:
                        graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def _is_package_init(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def test_no_import_cycle():
    # A package's __init__ re-exporting its modules is not a cycle of rules:
    # leave the edges into an __init__ out.
    graph = {m: {t for t in ts if not _is_package_init(t)} for m, ts in _imports(False).items()}
    assert _cycles(graph) == []


def test_cycle_detection_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_follow_the_layers():
    wrong = sorted(f"{m} -> {t}" for m, ts in _imports(False).items() for t in ts
                   if _layer(t) > _layer(m) and not _is_package_init(t))
    assert wrong == []


def test_no_private_reach_across_modules():
    wrong = []
    for mod, tree in TREES.items():
        if not _is_core(mod):
            continue
        bound_modules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias, (target, name) in zip(node.names, _targets(mod, node), strict=True):
                    if name is None and target.startswith("xmailnb"):
                        bound_modules[alias.asname or alias.name] = target
                    elif name is not None and target.startswith("xmailnb") and target != mod and _private(name):
                        wrong.append(f"{mod}:{node.lineno} from {target} import {name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name.startswith("xmailnb"):
                        bound_modules[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound_modules and bound_modules[node.value.id] != mod
                    and _private(node.attr)):
                wrong.append(f"{mod}:{node.lineno} {bound_modules[node.value.id]}.{node.attr}")
    assert wrong == []


def _local_imports() -> list[tuple[str, int, str]]:
    found = []
    for mod, tree in TREES.items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    found += [(mod, node.lineno, a.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    found.append((mod, node.lineno, _absolute(mod, node)))
    return sorted(set(found))


def test_imports_are_at_the_top():
    wrong = [f"{mod}:{line} imports {target}" for mod, line, target in _local_imports()
             if _is_core(mod) and (mod, target.split(".")[0]) not in ALLOWED_LOCAL_IMPORTS]
    assert wrong == []


def test_every_allowed_local_import_is_still_there():
    """The allowance list stays honest: an entry nobody needs is removed."""
    used = {(mod, target.split(".")[0]) for mod, _, target in _local_imports()}
    assert sorted(set(ALLOWED_LOCAL_IMPORTS) - used) == []


def test_commands_are_registered_in_one_table():
    from xmailnb.cli.main import COMMANDS

    command_modules = {m for m in MODULES if m.startswith("xmailnb.cli.")} - {
        "xmailnb.cli.main", "xmailnb.cli.output"}
    assert set(COMMANDS.values()) == command_modules
    for module in COMMANDS.values():
        names = {n.name for n in TREES[module].body if isinstance(n, ast.FunctionDef)}
        assert "register" in names, module


@pytest.mark.parametrize("rule", ["cycle", "private"])
def test_the_checks_see_a_violation(rule, tmp_path, monkeypatch):
    """The rules above can fail: a small package with the fault is caught."""
    a = ast.parse("from . import b\nx = b._hidden\n")
    b = ast.parse("from . import a\n")
    monkeypatch.setitem(MODULES, "xmailnb.zz_a", PKG / "zz_a.py")
    monkeypatch.setitem(MODULES, "xmailnb.zz_b", PKG / "zz_b.py")
    monkeypatch.setitem(TREES, "xmailnb.zz_a", ast.parse(ast.unparse(a).replace("b", "zz_b", 1)
                                                         .replace("b._hidden", "zz_b._hidden")))
    monkeypatch.setitem(TREES, "xmailnb.zz_b", ast.parse(ast.unparse(b).replace("a", "zz_a")))
    if rule == "cycle":
        with pytest.raises(AssertionError):
            test_no_import_cycle()
    else:
        with pytest.raises(AssertionError):
            test_no_private_reach_across_modules()


def test_the_documented_import_direction_is_the_one_checked():
    doc = (PKG.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    line = next(line for line in doc.splitlines() if line.startswith("base  <-"))
    documented = {name.strip(): rank for rank, group in enumerate(line.split("<-"))
                  for name in group.split("/")}
    documented[""] = documented.pop("base")
    assert documented == LAYERS
