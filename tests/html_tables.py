"""Read tables and JSON blocks out of rendered pages with the standard library's HTML parser."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser


class _TableReader(HTMLParser):
    def __init__(self, table_id: str):
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.depth = 0  # >0 while inside the wanted table
        self.section = None
        self.rows: dict[str, list[list[str]]] = {"thead": [], "tbody": [], "tfoot": []}
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif attrs.get("id") == self.table_id:
                self.depth = 1
            return
        if not self.depth:
            return
        if tag in self.rows:
            self.section = tag
        elif tag == "tr":
            self.rows[self.section or "tbody"].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == "table":
            self.depth -= 1
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[self.section or "tbody"][-1].append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None

    def handle_data(self, data):
        if self.depth and self.cell is not None:
            self.cell.append(data)


def table_rows(html: str, table_id: str, section: str = "tbody") -> list[list[str]]:
    """The cell texts (th and td, whitespace collapsed) of each row of one section of a table."""
    reader = _TableReader(table_id)
    reader.feed(html)
    if not reader.depth and not any(reader.rows.values()):
        raise AssertionError(f"no table with id {table_id!r}")
    return reader.rows[section]


def json_script(html: str, element_id: str):
    """The parsed content of <script type="application/json" id="...">."""
    match = re.search(rf'<script type="application/json" id="{re.escape(element_id)}">(.*?)</script>', html, re.DOTALL)
    if match is None:
        raise AssertionError(f"no JSON script block with id {element_id!r}")
    return json.loads(match.group(1))
