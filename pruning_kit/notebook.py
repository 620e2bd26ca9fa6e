"""Putting a lesson's computed results on the page: a sentence with its numbers, a clean table.

Every number a lesson states is computed in the lesson. :func:`say` shows a sentence (Markdown,
so it may hold LaTeX and emphasis) written from those numbers; :func:`show_table` shows a pandas
table without its meaningless integer index, each column in the format it needs (percent,
thousands separators, a fixed number of digits). Both display with IPython; :func:`table`
returns the styled table without showing it.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"sparsity": [0.5, 0.9], "weights kept": [133305, 26661]})
    >>> html = table(frame, {"sparsity": "{:.0%}", "weights kept": "{:,}"}).to_html()
    >>> "90%" in html and "26,661" in html
    True
"""

from __future__ import annotations

from ._checks import InvalidParameterError, type_name

__all__ = ["say", "table", "show_table"]


def _display(obj) -> None:
    from IPython.display import display  # not at import time: the library loads without IPython

    display(obj)


def say(text: str) -> None:
    """Show a sentence whose numbers were computed in the notebook, rendered as Markdown.

    Example:
        >>> say(f"Pruning 90% of the weights keeps {26661:,} of them.")  # doctest: +ELLIPSIS
        <IPython.core.display.Markdown object>
    """
    if not isinstance(text, str):
        raise InvalidParameterError(f"text must be a str (Markdown), got {type_name(text)}")
    from IPython.display import Markdown

    _display(Markdown(text))


def table(frame, formats=None, *, caption: str | None = None):
    """A pandas ``Styler`` of ``frame`` without its index, each column in its format.

    Args:
        frame: a ``pandas.DataFrame``.
        formats: optional dict column -> format string (``"{:.1%}"``) or callable.
        caption: optional caption above the table.

    Example:
        >>> import pandas as pd
        >>> styler = table(pd.DataFrame({"bits": [8, 4]}), caption="Bit widths")
        >>> "Bit widths" in styler.to_html()
        True
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(f"frame must be a pandas DataFrame, got {type_name(frame)}")
    formats = {} if formats is None else formats
    if not isinstance(formats, dict):
        raise InvalidParameterError("formats must be a dict column -> format string (such as "
                                    f"'{{:.1%}}') or callable, got {type_name(formats)}")
    unknown = [column for column in formats if column not in frame.columns]
    if unknown:
        raise InvalidParameterError(f"formats names columns the table does not have: {unknown}; "
                                    f"its columns are {list(frame.columns)}")
    for column, fmt in formats.items():
        if not (isinstance(fmt, str) or callable(fmt)):
            raise InvalidParameterError(f"formats[{column!r}] must be a format string or a "
                                        f"callable, got {type_name(fmt)}")
    if caption is not None and not isinstance(caption, str):
        raise InvalidParameterError(f"caption must be a str or None, got {type_name(caption)}")
    styler = frame.style.hide(axis="index").format(formats)
    return styler.set_caption(caption) if caption else styler


def show_table(frame, formats=None, *, caption: str | None = None) -> None:
    """Show :func:`table` ``(frame, formats, caption)`` in the notebook.

    Example:
        >>> import pandas as pd
        >>> show_table(pd.DataFrame({"bits": [8, 4]}))  # doctest: +ELLIPSIS
        <pandas.io.formats.style.Styler object at ...>
    """
    _display(table(frame, formats, caption=caption))
