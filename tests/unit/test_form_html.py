"""app/form_html.py: WTForms' attributes without Markup.format, byte for byte the same HTML."""
from __future__ import annotations

import itertools

import pytest
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    Form,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length
from wtforms.widgets import core

from app import form_html

VALUES = ["plain", "", 'say "hi"', "<b>&amp;</b>", "l'apostrophe", Markup('<i class="x">safe</i>'),
          Markup("a &amp; b"), 0, 7, 3.5, None, True, False, "é — ünïcode"]
KEYS = ["id", "class_", "for_", "data_some_value", "aria_described_by", "autocomplete", "type", "value",
        "name", "a<b", 'q"k']


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_one_attribute_as_wtforms_writes_it(key, value):
    assert form_html.html_params(**{key: value}) == form_html._wtforms_html_params(**{key: value})


def test_many_attributes_sorted_as_wtforms_sorts_them():
    for keys in itertools.combinations(KEYS, 4):
        for values in itertools.islice(itertools.permutations(VALUES, 4), 0, None, 997):
            kwargs = dict(zip(keys, values, strict=True))
            ours = form_html.html_params(**kwargs)
            assert ours == form_html._wtforms_html_params(**kwargs)
            assert isinstance(ours, Markup)


class _Everything(Form):
    name = StringField("Your <name>", validators=[DataRequired(), Length(max=40)])
    secret = PasswordField("Password")
    agree = BooleanField("I agree")
    colour = SelectField("Colour", choices=[SelectChoice("r", 'Red "&" <hot>'), SelectChoice("b", "Blue")])
    count = IntegerField("How many")
    notes = TextAreaField("Notes")


def _rendered(form: Form) -> str:
    return "".join(str(f(class_="form-control", aria_describedby="x-help", data_x='a"b')) + str(f.label(class_="l"))
                   for f in form)


def test_a_whole_form_renders_the_same_with_and_without_it(monkeypatch):
    data = MultiDict({"name": 'Zoë "Z" <script>', "agree": "y", "colour": "b", "count": "x12", "notes": "</textarea>"})
    monkeypatch.setattr(core, "html_params", form_html._wtforms_html_params)
    monkeypatch.setattr("wtforms.widgets.html_params", form_html._wtforms_html_params)
    monkeypatch.setattr(core.Input, "html_params", staticmethod(form_html._wtforms_html_params))
    monkeypatch.setattr(core.Button, "html_params", staticmethod(form_html._wtforms_html_params))
    theirs = _rendered(_Everything(formdata=data))
    form_html.install()
    assert core.Input.html_params is form_html.html_params
    assert _rendered(_Everything(formdata=data)) == theirs
    assert 'value="Zoë &#34;Z&#34; &lt;script&gt;"' in theirs


def test_the_app_installs_it(app):
    assert core.html_params is form_html.html_params
    assert core.Input.html_params is form_html.html_params
    assert core.Button.html_params is form_html.html_params
