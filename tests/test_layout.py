"""
The layout holds: the hub imports no Redis, Sentry or Prometheus (the
service injects them), and the package's import graph has no cycles.
"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "aleatoria"


def test_the_hub_imports_no_backend_nor_reporting():
    """import aleatoria.domain.hub loads neither txredisapi, sentry_sdk nor prometheus_client."""
    code = ("import sys, aleatoria.domain.hub; "
            "print(sorted(m for m in ('txredisapi', 'sentry_sdk', 'prometheus_client', "
            "'autobahn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _imports():
    """Each module of the package, with the package modules it imports."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = node.module or ""
                full = f"{base}.{target}".strip(".") if node.level else target
                for alias in node.names:
                    candidate = f"{full}.{alias.name}"
                    found.add(candidate if _is_module(candidate) else full)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m.startswith("aleatoria") and m != name}
    return graph


def _is_module(name):
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_no_import_cycles():
    """The package's modules import one way: no module reaches itself through others."""
    graph = _imports()
    visiting, done = set(), set()

    def visit(module, path):
        assert module not in visiting, " -> ".join([*path, module])
        if module in done:
            return
        visiting.add(module)
        for target in graph.get(module, ()):
            if target.startswith(module + "."):
                continue  # a package importing its own submodules
            visit(target, [*path, module])
        visiting.discard(module)
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_wire_codes_live_in_routes():
    """
    The hub raises refusals and returns plain values; the error codes and
    the reply types of the wire are named only in aleatoria/routes.py.
    """
    from aleatoria.edge.routes import CODES, ROUTES

    wire = [*CODES.values(), "room_joined", "rooms_list", "recent_messages",
            "no_peer_available"]
    assert set(ROUTES) >= {"chat_message", "join_room", "request_random_peer"}
    for path in (PACKAGE / "domain").glob("*.py"):
        text = path.read_text()
        assert [name for name in wire if f'"{name}"' in text] == [], path.name
