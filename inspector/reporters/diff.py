"""The diff output formats: one ``{name: render}`` registry, the only list of their names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.diff import ModelDiff


def _text(d: ModelDiff, kinds: tuple[str, ...]) -> str:
    from . import diff_text

    return diff_text.render(d, kinds=kinds)


def _json(d: ModelDiff, kinds: tuple[str, ...]) -> str:
    from . import diff_json

    return diff_json.render(d, kinds=kinds)


def _markdown(d: ModelDiff, kinds: tuple[str, ...]) -> str:
    from . import diff_markdown

    return diff_markdown.render(d, kinds=kinds)


RENDERERS: dict[str, Callable[[ModelDiff, tuple[str, ...]], str]] = {
    "text": _text, "json": _json, "markdown": _markdown,
}
FORMATS: tuple[str, ...] = tuple(RENDERERS)


def render(d: ModelDiff, *, fmt: str = "text", kinds: tuple[str, ...] = ()) -> str:
    """Format ``d`` as ``fmt`` (one of :data:`FORMATS`); ``kinds`` are the kinds of change found."""
    from ..textsafe import scrub

    return RENDERERS[fmt](d if fmt == "json" else scrub(d), kinds)
