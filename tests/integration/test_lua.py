"""
The Lua scripts of the Redis backend, as Redis runs them (each with its
preamble and what it uses), are clean for luacheck: no global but those
Redis gives a script, no unused variable -- but the shared functions and
keys a script need not use.
"""

import re
import shutil
import subprocess

import pytest

from aleatoria.redis.scripts import SCRIPTS, _read

LUACHECK = shutil.which("luacheck")


def test_the_scripts_are_luacheck_clean(tmp_path):
    if LUACHECK is None:
        pytest.fail("luacheck is not installed (make test installs Debian's lua-check)")
    shared = {"id", *re.findall(r"local function (\w+)", _read("library") + _read("streams"))}
    for name, text in SCRIPTS.items():
        (tmp_path / f"{name}.lua").write_text(text)
    ignored = [f"211/{function}" for function in sorted(shared)]
    result = subprocess.run(
        [LUACHECK, "--std", "lua51", "--codes", "--no-color", "--globals", "redis", "cjson",
         "ARGV", "KEYS", "--ignore", *ignored, "--", *sorted(tmp_path.glob("*.lua"))],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
