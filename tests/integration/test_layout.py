"""
The layout holds: the import contracts of C{.importlinter} (run by
C{make lint}) keep the layers pointing one way; these keep what a
contract cannot see -- the domain names no wire type, the package root
holds no module but its own, no Lua hides in Python, and no module or
class outgrows what a reader takes in at once.
"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "aleatoria"
MAX_MODULE_LINES = 350
MAX_CLASS_LINES = 250


def test_the_import_contracts_are_kept():
    """lint-imports, as make lint runs it, finds every contract kept."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_domain_imports_no_backend_nor_reporting():
    """Importing the hub loads no Redis client, reporting library nor autobahn."""
    code = ("import sys, aleatoria.domain.hub; "
            "print(sorted(m for m in ('txredisapi', 'sentry_sdk', 'prometheus_client', "
            "'autobahn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_domain_names_no_wire_type():
    """
    The domain emits events and raises refusals; the types of the frames
    the edge renders and the error codes it gives are named there only.
    (The names of requests are not checked: several are the domain's own
    words too -- join_room and room_members are sessions operations,
    hangup is a signal kind.)
    """
    from aleatoria.edge.routes import CODES

    rendered = ["room_joined", "room_left", "rooms_list", "recent_messages", "marked_read",
                "resumed", "no_peer_available", "assign_role", "user_joined", "user_left",
                "chat_message", "webrtc_offer", "webrtc_answer", "webrtc_candidate",
                "error_response"]
    for path in (PACKAGE / "domain").glob("*.py"):
        text = path.read_text()
        named = [name for name in [*rendered, *CODES.values()] if f'"{name}"' in text]
        assert named == [] and '"type":' not in text, path.name


def test_the_root_holds_only_the_package():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]


def test_no_lua_in_python():
    for path in PACKAGE.rglob("*.py"):
        assert "redis.call(" not in path.read_text(), path


def test_modules_and_classes_stay_small():
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        assert len(source.splitlines()) <= MAX_MODULE_LINES, path
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_CLASS_LINES, f"{path}: {node.name} has {lines} lines"
