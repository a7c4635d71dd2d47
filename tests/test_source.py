"""helpers.source: the notebooks show the code that runs."""

from helpers import source


def example(x):
    """An example to show."""
    return x + 1


def test_source_of_returns_the_definitions_in_order():
    text = source.source_of(example, source.source_of)
    assert text.startswith("def example(x):") and "def source_of" in text
    assert text.index("def example") < text.index("def source_of")


def test_show_source_displays_highlighted_code(monkeypatch):
    shown = []
    monkeypatch.setattr(source, "display", shown.append)
    source.show_source(example)
    assert len(shown) == 1 and "return x + 1" in shown[0].data and "<span" in shown[0]._repr_html_()
