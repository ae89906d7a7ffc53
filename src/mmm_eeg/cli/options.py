"""The config-to-flags bridge: one command-line option per field of a config dataclass.

Help texts come from the dataclasses' numpydoc docstrings, read by ``docstring-parser``;
choices from ``Literal`` field types; flag names from the field names. So the command line
never restates a config field by hand, and a new field is a new flag.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING, fields
from functools import wraps
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import docstring_parser
import typer
from rich.markup import escape

from mmm_eeg.validation import split_list


def parameter_help(cls: type) -> dict[str, str]:
    """Each parameter's description from the numpydoc ``Parameters`` sections of ``cls``'s MRO
    (a subclass's description wins)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        style = docstring_parser.DocstringStyle.NUMPYDOC
        for param in docstring_parser.parse(klass.__doc__ or "", style).params:
            found[param.arg_name] = " ".join((param.description or "").split())
    return found


def config_options(
    cls: type, *, skip: tuple[str, ...] = (), flags: dict[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per field of the config dataclass ``cls``.

    The command declares its own arguments and a last parameter ``options``; it receives the
    fields given on the command line (None: not given) in ``options``. Choices come from
    ``Literal`` field types, help from the dataclass's docstring, flag names from the field names
    (or ``flags``), so the command line never restates a config field by hand. A ``list[str]``
    field is given comma-separated.
    """
    hints = get_type_hints(cls)
    helps = parameter_help(cls)
    flags = flags or {}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.name != "options"
        ]
        taken = {p.name for p in own}
        added, lists = [], set()
        for f in fields(cls):
            if f.name in skip or f.name in taken:
                continue
            kind = option_type(hints[f.name])
            if kind is list:
                kind = str
                lists.add(f.name)
            default = f.default if f.default is not MISSING else None
            info = typer.Option(
                *([flags[f.name]] if f.name in flags else []),
                help=escape(helps.get(f.name, "")),  # rich would read "[...]" as markup
                show_default=str(default) if default is not None else False,
            )
            added.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[kind | None, info],
                )
            )

        @wraps(func)
        def command(**kwargs: Any) -> Any:
            options = {p.name: kwargs.pop(p.name) for p in added}
            for name in lists:
                options[name] = split_list(options[name])
            return func(**kwargs, options=options)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def option_type(hint: Any) -> Any:
    """The command-line type of a config field (typer turns a ``Literal`` into choices)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) in (Union, UnionType) and len(args) == 1:
        hint = args[0]
    return list if get_origin(hint) is list else hint
