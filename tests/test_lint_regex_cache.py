"""The compiled-regex cache speeds up a cold start and can never change a result.

Every rule pattern comes back from the cache as a pattern that finds exactly
what ``re.compile`` finds; a damaged, foreign or unwritable cache costs a
fresh compile and nothing else.
"""

from __future__ import annotations

import importlib
import marshal
import os
import pkgutil
import re
import sys

import pytest
from conftest import ROOT

from dispatch_kit.lint import patterns


def all_rule_patterns() -> list[tuple[str, int]]:
    """Every lazily compiled pattern the linter's modules declare."""
    import dispatch_kit.lint as lint_package
    import dispatch_kit.lint.rules as rules_package

    for package in (lint_package, rules_package):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    found = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("dispatch_kit."):
            continue
        for value in vars(module).values():
            candidates = value if isinstance(value, tuple) else (value,)
            for item in candidates:
                if isinstance(item, tuple):
                    item = next((x for x in item if isinstance(x, patterns._Lazy)), None)
                if isinstance(item, patterns._Lazy):
                    found[(item.pattern, item.flags)] = None
    return list(found)


def sample_texts() -> list[str]:
    texts = []
    for folder in ("skills", "agents", "templates", "tests/fixtures/lint"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".md", ".j2", ".yaml", ".json"):
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return texts


def spans(pattern: re.Pattern[str], text: str) -> list[tuple]:
    return [(m.span(), m.groups(), m.groupdict()) for m in pattern.finditer(text)]


@pytest.fixture(autouse=True)
def bytecode_writing_on(monkeypatch):
    """The cache follows Python's own switch; the suite may run with it off."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def test_every_rule_pattern_from_the_cache_matches_like_re_compile(tmp_path):
    declared = all_rule_patterns()
    assert len(declared) > 50  # the scan found the rules' patterns
    writer = patterns._Cache(str(tmp_path / "cache.marshal"))
    for pattern, flags in declared:
        writer.compile(pattern, flags)
    writer.save()
    reader = patterns._Cache(str(tmp_path / "cache.marshal"))
    reader.entries = reader._load()
    assert set(reader.entries) == {f"{int(f)}:{p}" for p, f in declared}
    texts = sample_texts()
    assert texts
    for pattern, flags in declared:
        cached = reader.compile(pattern, flags)
        fresh = re.compile(pattern, flags)
        assert (cached.pattern, cached.flags, cached.groupindex) == (
            fresh.pattern, fresh.flags, fresh.groupindex
        )
        for text in texts:
            assert spans(cached, text) == spans(fresh, text), pattern


def test_a_second_process_compiles_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "cache.marshal")
    first = patterns._Cache(path)
    first.compile(r"\bclaim\w*", re.I)
    first.save()

    def no_compile(*args):
        raise AssertionError("compiled again although the cache holds it")

    monkeypatch.setattr(patterns, "_parts", no_compile)
    second = patterns._Cache(path)
    assert second.compile(r"\bclaim\w*", re.I).search("We CLAIMED it").group(0) == "CLAIMED"
    assert not second.dirty  # nothing new, so nothing to write at exit


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not marshal data at all",
        marshal.dumps(["a list, not a dict"]),
        marshal.dumps({"0:a+": (0, [1, 2, 3], 0, {}, ())}),  # opcodes the engine rejects
        marshal.dumps({"0:a+": "not the parts"}),
    ],
    ids=["empty", "garbage", "wrong-type", "bad-opcodes", "bad-entry"],
)
def test_a_damaged_cache_falls_back_to_re_compile(tmp_path, content):
    path = tmp_path / "cache.marshal"
    path.write_bytes(content)
    cache = patterns._Cache(str(path))
    compiled = cache.compile("a+", 0)
    assert compiled.findall("caaat a") == ["aaa", "a"]


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be", encoding="utf-8")
    cache = patterns._Cache(str(blocker / "sub" / "cache.marshal"))
    assert cache.compile("b+", 0).search("abbc").group(0) == "bb"
    cache.save()  # must not raise
    assert not (tmp_path / "file.tmp").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_no_cache_is_written_when_bytecode_writing_is_off(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache = patterns._Cache(str(tmp_path / "cache.marshal"))
    cache.compile("c+", 0)
    cache.save()
    assert not os.listdir(tmp_path)


def test_the_cache_sits_beside_the_bytecode_and_names_the_interpreter():
    path = patterns._cache_path()
    assert path is not None
    assert os.path.dirname(path) == os.path.join(os.path.dirname(patterns.__file__), "__pycache__")
    assert sys.implementation.cache_tag in os.path.basename(path)


def test_the_cli_leaves_a_cache_that_the_next_run_uses(cli, tmp_path):
    """End to end, in a fresh process: a lint run writes the cache at exit."""
    from conftest import cli_env

    (tmp_path / "p.md").write_text("[Execute] Fix the parser.\n", encoding="utf-8")
    path = patterns._cache_path()
    env = cli_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.path.exists(path):
        os.unlink(path)  # a cache, so removing it is always safe
    first = cli("lint", "p.md", cwd=tmp_path, env=env)
    assert first.returncode == 1
    assert os.path.isfile(path)
    with open(path, "rb") as handle:
        entries = marshal.loads(handle.read())
    assert any("(execute|plan|" in key for key in entries)  # the kind marker's pattern
    second = cli("lint", "p.md", cwd=tmp_path, env=env)
    assert (second.returncode, second.stdout) == (first.returncode, first.stdout)


def test_the_cache_follows_pycache_prefix(monkeypatch, tmp_path):
    """PYTHONPYCACHEPREFIX moves bytecode out of the source tree; the cache goes with it."""
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    path = patterns._cache_path()
    assert path is not None and path.startswith(str(tmp_path) + os.sep)
    here = os.path.dirname(os.path.abspath(patterns.__file__))
    assert os.path.dirname(path) == os.path.join(str(tmp_path), here.lstrip(os.sep))


def test_an_entry_is_kept_only_when_it_equals_re_compile(monkeypatch):
    """A rebuilt pattern that differs from re.compile's in any way is never cached."""
    from types import SimpleNamespace

    def reference_with_other_flags(pattern, flags=0):
        return re.compile(pattern, flags | re.IGNORECASE)

    monkeypatch.setattr(patterns, "re", SimpleNamespace(compile=reference_with_other_flags))
    assert patterns._parts("abc", 0) is None
    monkeypatch.setattr(patterns, "re", re)
    assert patterns._parts("abc", 0) is not None


def test_a_hook_ending_without_teardown_still_saves_the_cache(cli, tmp_path, monkeypatch):
    """A hook's process ends with os._exit (no interpreter teardown): its exit handlers, which
    save this cache, still run, and its answer is still flushed."""
    import json

    from conftest import cli_env

    prefix = tmp_path / "pycache"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    path = patterns._cache_path()
    env = cli_env(PYTHONPYCACHEPREFIX=str(prefix))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    event = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Agent",
                        "cwd": str(tmp_path),
                        "tool_input": {"prompt": "[Execute] Fix the parser.\n",
                                       "subagent_type": "general-purpose"}})
    result = cli("hook", "pre-dispatch", input=event, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "dispatch-prompt:" in result.stderr, result.stderr
    assert path is not None and os.path.isfile(path)
