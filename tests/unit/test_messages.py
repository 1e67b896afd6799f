"""The one message table: no English sentence flashed from code, every code used exists, every text formats.

User-facing messages live in templates, forms and app/messages.py (so a French table can follow);
these checks read the sources of app/ rather than running the views.
"""
from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from app.messages import MESSAGES, message_for

APP = Path(__file__).resolve().parents[2] / "app"
PYTHON_SOURCES = sorted(APP.rglob("*.py"))
TEMPLATES = sorted((APP / "templates").rglob("*.html"))
TEMPLATE_CODE = re.compile(r"""message_for\(\s*(["'])([A-Za-z0-9_]+)\1\s*[,)]""")
FLASH_LITERAL = re.compile(r"""\bflash\(\s*[rRuUfF]{0,2}["']""")


def _calls(tree: ast.AST, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Name) and node.func.id == name)
                or (isinstance(node.func, ast.Attribute) and node.func.attr == name)):
            yield node


def _string_literals(node: ast.AST):
    """String constants and f-strings in an expression, not looking inside nested calls."""
    if isinstance(node, ast.JoinedStr):
        yield node
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
        return
    if isinstance(node, ast.Call):
        return
    for child in ast.iter_child_nodes(node):
        yield from _string_literals(child)


def _parsed():
    for path in PYTHON_SOURCES:
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _placeholders(template: str) -> set[str]:
    return {field.split(".")[0].split("[")[0]
            for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def test_the_sources_are_found():
    assert len(PYTHON_SOURCES) > 20 and TEMPLATES
    assert any(path.name == "routes.py" for path in PYTHON_SOURCES)


def test_no_literal_text_is_flashed():
    found = []
    for path in PYTHON_SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FLASH_LITERAL.search(line):
                found.append(f"{path.relative_to(APP.parent)}:{number}: {line.strip()}")
    for path, tree in _parsed():  # also `flash("a" if x else f"b")`, `flash("a" + b)`, over several lines
        for call in _calls(tree, "flash"):
            if call.args and any(True for _ in _string_literals(call.args[0])):
                found.append(f"{path.relative_to(APP.parent)}:{call.lineno}: flash() of a literal")
    assert not found, "flash message_for(code) instead, with the text in app/messages.py:\n" + "\n".join(found)


def test_the_literal_check_catches_literals():
    tree = ast.parse('flash("Saved.", "success")\nflash(f"Hi {x}")\nflash("a" if y else "b")\n'
                     'flash(message_for("profile_saved"), "success")\nflash(message_for(p or "login_first"))\n'
                     'flash(success, "success")\n')
    flagged = [call.lineno for call in _calls(tree, "flash") if any(True for _ in _string_literals(call.args[0]))]
    assert flagged == [1, 2, 3]
    assert FLASH_LITERAL.search('flash(f"Hi")') and FLASH_LITERAL.search("flash( 'Hi')")
    assert not FLASH_LITERAL.search('flash(message_for("x"))')


def _codes_used() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path, tree in _parsed():
        for call in _calls(tree, "message_for"):
            if not call.args:
                continue
            for literal in _string_literals(call.args[0]):
                if isinstance(literal, ast.Constant):
                    used.setdefault(literal.value, []).append(f"{path.relative_to(APP.parent)}:{call.lineno}")
    for path in TEMPLATES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in TEMPLATE_CODE.finditer(line):
                used.setdefault(match.group(2), []).append(f"{path.relative_to(APP.parent)}:{number}")
    return used


def test_every_code_passed_to_message_for_exists():
    used = _codes_used()
    assert {"logged_out", "cart_added", "event_published", "event_unpublished", "login_first"} <= set(used)
    missing = {code: places for code, places in used.items() if code not in MESSAGES}
    assert not missing, f"codes with no text in app/messages.py MESSAGES: {missing}"


def test_calls_give_every_placeholder_of_their_code():
    problems = []
    for path, tree in _parsed():
        for call in _calls(tree, "message_for"):
            if not call.args or any(keyword.arg is None for keyword in call.keywords):  # **params: not checked
                continue
            given = {keyword.arg for keyword in call.keywords}
            for literal in _string_literals(call.args[0]):
                needed = _placeholders(MESSAGES.get(getattr(literal, "value", None), ""))
                if not needed <= given:
                    problems.append(f"{path.relative_to(APP.parent)}:{call.lineno}: {literal.value} needs "
                                    f"{sorted(needed)}, gets {sorted(given)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_message_formats_with_its_placeholders(code):
    template = MESSAGES[code]
    assert template.strip() and template == template.strip()
    fields = _placeholders(template)
    assert all(field.isidentifier() for field in fields), f"{code}: use named placeholders, e.g. {{count}}"
    assert "code" not in fields, f"{code}: {{code}} clashes with message_for's own argument; name it otherwise"
    params = {field: 1234 for field in fields}
    text = template.format(**params)  # raises on a broken placeholder or format spec
    assert message_for(code, **params) == text
    if fields:
        assert "1234" in text or "1,234" in text
        with pytest.raises(KeyError):
            template.format()
