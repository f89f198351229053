"""ASP.NET route templates as the Functions host uses them; pure, no I/O.

A template is split into '/'-separated segments; each is a literal, a parameter
(`{id}`, `{id:int}`, `{id?}`, `{id=5}`, `{id:int:min(1)}`), a catch-all (`{*rest}`, `{**rest}`)
or a complex segment mixing both (`{name}.{ext}`). Literals match case-insensitively, a single
trailing slash is ignored, and route values are percent-decoded.

Precedence follows ASP.NET Core's inbound precedence, which the Functions host applies to its
routes: segment by segment, literal (1) before complex (2) before constrained parameter (3)
before plain parameter (4) before catch-all (5); ties are broken by the template text. A route
whose path matches but whose methods do not is skipped, as in the host (which then answers 404,
not 405, when no other route matches).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar
from urllib.parse import unquote

__all__ = ["Route", "RouteError", "RouteTable", "parse_template"]

T = TypeVar("T")

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class RouteError(ValueError):
    """A route template that cannot be parsed, or uses an unknown constraint."""


def _is_int(value: str, bounds: tuple[int, int]) -> bool:
    if not re.fullmatch(r"[+-]?\d+", value):
        return False
    return bounds[0] <= int(value) <= bounds[1]


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip().lower() not in ("nan", "inf", "-inf", "infinity", "+inf")


def _is_decimal(value: str) -> bool:
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", value) is not None


def _is_guid(value: str) -> bool:
    text = value.strip()
    if len(text) == 38 and text[0] + text[-1] in ("{}", "()"):
        text = text[1:-1]
    if not re.fullmatch(
        r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", text
    ):
        return False
    uuid.UUID(text)
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _int_arg(name: str, args: list[str], count: int) -> list[int]:
    if len(args) != count or not all(re.fullmatch(r"-?\d+", a.strip()) for a in args):
        raise RouteError(f"constraint {name!r} needs {count} integer argument(s)")
    return [int(a) for a in args]


Check = Callable[[str], bool]


def _constraint(name: str, raw_args: str | None) -> Check:
    """Build the check for one inline constraint, e.g. `int` or `range(1,10)`."""
    key = name.lower()
    args = [] if raw_args is None else raw_args.split(",")
    simple: dict[str, Check] = {
        "int": lambda v: _is_int(v, _INT32),
        "long": lambda v: _is_int(v, _INT64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _is_guid,
        "alpha": lambda v: re.fullmatch(r"[a-zA-Z]+", v) is not None,
        "datetime": _is_datetime,
        "decimal": _is_decimal,
        "double": _is_float,
        "float": _is_float,
        "required": lambda v: v != "",
        "file": lambda v: "." in v.rsplit("/", 1)[-1],
        "nonfile": lambda v: "." not in v.rsplit("/", 1)[-1],
    }
    if key in simple:
        if raw_args is not None:
            raise RouteError(f"constraint {name!r} takes no arguments")
        return simple[key]
    if key == "regex":
        if raw_args is None:
            raise RouteError("constraint 'regex' needs a pattern")
        try:
            pattern = re.compile(raw_args, re.IGNORECASE)
        except re.error as exc:
            raise RouteError(f"invalid regex constraint {raw_args!r}: {exc}") from exc
        return lambda v: pattern.search(v) is not None
    if key in ("min", "max"):
        (n,) = _int_arg(name, args, 1)
        if key == "min":
            return lambda v: _is_int(v, _INT64) and int(v) >= n
        return lambda v: _is_int(v, _INT64) and int(v) <= n
    if key == "range":
        lo, hi = _int_arg(name, args, 2)
        return lambda v: _is_int(v, _INT64) and lo <= int(v) <= hi
    if key in ("minlength", "maxlength"):
        (n,) = _int_arg(name, args, 1)
        if key == "minlength":
            return lambda v: len(v) >= n
        return lambda v: len(v) <= n
    if key == "length":
        bounds = _int_arg(name, args, len(args) if len(args) in (1, 2) else 1)
        lo, hi = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: lo <= len(v) <= hi
    raise RouteError(f"unknown route constraint {name!r}")


_PARAM = re.compile(r"\{([^{}]*)\}")
_CONSTRAINT = re.compile(r"([A-Za-z]+)(?:\((.*)\))?$")


@dataclass(frozen=True)
class _Param:
    name: str
    checks: tuple[Check, ...]
    optional: bool
    default: str | None
    catch_all: bool


def _parse_param(body: str, template: str) -> _Param:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default: str | None = None
    if "=" in body:
        body, default = body.split("=", 1)
    optional = body.endswith("?")
    body = body.rstrip("?")
    # Constraint arguments may contain ':' (e.g. regex), so split on ':' only outside parens.
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    name, specs = parts[0].strip(), parts[1:]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RouteError(f"invalid route parameter {{{body}}} in {template!r}")
    checks = []
    for spec in specs:
        m = _CONSTRAINT.match(spec.strip())
        if not m:
            raise RouteError(f"invalid constraint {spec!r} in {template!r}")
        checks.append(_constraint(m.group(1), m.group(2)))
    return _Param(name, tuple(checks), optional or catch_all, default, catch_all)


@dataclass(frozen=True)
class Route(Generic[T]):
    template: str
    methods: frozenset[str] | None  # None: every method
    target: T
    precedence: tuple[int, ...]
    _regex: re.Pattern[str] = field(repr=False)
    _params: tuple[_Param, ...] = field(repr=False)

    def match_path(self, path: str) -> dict[str, str] | None:
        m = self._regex.fullmatch(path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for i, p in enumerate(self._params):
            raw = m.group(f"p{i}")
            if raw is None or raw == "":
                if p.default is not None:
                    values[p.name] = p.default
                elif not p.optional:
                    return None
                continue
            value = unquote(raw)
            if not all(check(value) for check in p.checks):
                return None
            values[p.name] = value
        return values

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def parse_template(template: str, target: T, methods: Iterable[str] | None = None) -> Route[T]:
    """Compile `template` (already including any route prefix) into a `Route`."""
    text = template.strip().strip("/")
    segments = text.split("/") if text else []
    params: list[_Param] = []
    pattern = ""
    precedence: list[int] = []
    for index, segment in enumerate(segments):
        if segment == "":
            raise RouteError(f"empty segment in route {template!r}")
        pieces = _PARAM.split(segment)  # literal, param, literal, param, ..., literal
        literal_only = len(pieces) == 1
        if any("{" in p or "}" in p for p in pieces[::2]):
            raise RouteError(f"unbalanced braces in route {template!r}")
        seg_params = [_parse_param(body, template) for body in pieces[1::2]]
        if any(p.catch_all for p in seg_params) and index != len(segments) - 1:
            raise RouteError(f"a catch-all parameter must be last in {template!r}")
        seg_regex = ""
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                seg_regex += re.escape(piece)
                continue
            p = seg_params[i // 2]
            group = f"p{len(params)}"
            params.append(p)
            body = ".*" if p.catch_all else "[^/]+?" if len(pieces) > 3 else "[^/]*"
            seg_regex += f"(?P<{group}>{body})"
        whole_optional = (
            len(pieces) == 3 and pieces[0] == pieces[2] == "" and seg_params[0].optional
        ) or (len(pieces) == 3 and pieces[0] == pieces[2] == "" and seg_params[0].default)
        sep = "/" if index else ""
        if whole_optional:
            pattern += f"(?:{sep}{seg_regex})?"
        else:
            pattern += sep + seg_regex
        if literal_only:
            precedence.append(1)
        elif len(pieces) > 3 or pieces[0] or pieces[2]:
            precedence.append(2)
        elif seg_params[0].catch_all:
            precedence.append(5)
        else:
            precedence.append(3 if seg_params[0].checks else 4)
    names = [p.name.lower() for p in params]
    if len(set(names)) != len(names):
        raise RouteError(f"a route parameter is repeated in {template!r}")
    regex = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    method_set = frozenset(m.upper() for m in methods) if methods else None
    return Route(text, method_set, target, tuple(precedence), regex, tuple(params))


def _sort_key(route: Route[T]) -> tuple[tuple[int, ...], str]:
    # A missing segment sorts like ASP.NET's 0 digit, which is more specific than any.
    return (route.precedence, route.template.lower())


class RouteTable(Generic[T]):
    """Routes in host precedence order; `match` returns the first that fits path and method."""

    def __init__(self, routes: Sequence[Route[T]] = ()) -> None:
        self._routes: list[Route[T]] = sorted(routes, key=_sort_key)

    def add(self, route: Route[T]) -> None:
        self._routes = sorted([*self._routes, route], key=_sort_key)

    @property
    def routes(self) -> list[Route[T]]:
        return list(self._routes)

    def match(self, method: str, path: str) -> tuple[Route[T], dict[str, str]] | None:
        """`path` is the raw (still percent-encoded) request path, without query."""
        trimmed = path.strip("/") if path not in ("", "/") else ""
        for route in self._routes:
            if not route.allows(method):
                continue
            values = route.match_path(trimmed)
            if values is not None:
                return route, values
        return None
