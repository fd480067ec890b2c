"""Generated blocks of the docs pages: the text between ``<!-- NAME:start -->``
and ``<!-- NAME:end -->`` of a page, rewritten by the tool that measures it."""

from pathlib import Path


def markers(name):
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def read_block(page, name):
    """The current text of block ``name`` of ``page`` (SystemExit if absent)."""
    start, end = markers(name)
    text = Path(page).read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{page} has no {start} ... {end} block")
    return text.split(start, 1)[1].split(end, 1)[0]


def write_block(page, name, body):
    """Replace block ``name`` of ``page`` with ``body`` (markers kept)."""
    start, end = markers(name)
    read_block(page, name)
    text = Path(page).read_text(encoding="utf-8")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    Path(page).write_text(f"{head}{start}\n{body.strip()}\n{end}{tail}", "utf-8")
