"""Just enough GraphQL for the Shopify emulator: operation type, fields with arguments and
selection sets, variables. No fragments, directives or validation beyond that."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<spread>\.\.\.)|(?P<punct>[{}()\[\]:,!$=@])|'
    r"(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<comment>#[^\n]*))"
)


class GraphQLSyntaxError(ValueError):
    pass


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict = field(default_factory=dict)
    children: list[Field] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.alias or self.name


def _tokens(source: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    source = source.rstrip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise GraphQLSyntaxError(f"Unexpected character at {pos}")
        pos = match.end()
        kind = match.lastgroup
        if kind != "comment":
            out.append((kind, match.group(kind)))
    return out


class _Parser:
    def __init__(self, source: str, variables: dict):
        self.toks = _tokens(source)
        self.i = 0
        self.variables = variables or {}

    def peek(self, value=None):
        if self.i >= len(self.toks):
            return None
        tok = self.toks[self.i]
        return tok if value is None or tok[1] == value else None

    def take(self, value=None):
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise GraphQLSyntaxError(f"Expected {value or 'a token'}, got {tok and tok[1]}")
        self.i += 1
        return tok

    def document(self) -> tuple[str, list[Field]]:
        op = "query"
        if self.peek() and self.peek()[0] == "name":
            op = self.take()[1]
            if op not in ("query", "mutation"):
                raise GraphQLSyntaxError(f"Unsupported operation {op}")
            if self.peek() and self.peek()[0] == "name":
                self.take()  # operation name
            if self.peek("("):
                self._skip_balanced("(", ")")  # variable definitions
        return op, self.selection_set()

    def _skip_balanced(self, open_, close):
        depth = 0
        while True:
            tok = self.take()
            if tok[1] == open_:
                depth += 1
            elif tok[1] == close:
                depth -= 1
                if depth == 0:
                    return

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields = []
        while not self.peek("}"):
            if self.peek(","):
                self.take()
                continue
            if self.peek("..."):
                raise GraphQLSyntaxError("Fragments are not supported by the emulator")
            name = self.take()[1]
            alias = None
            if self.peek(":"):
                self.take()
                alias, name = name, self.take()[1]
            f = Field(name=name, alias=alias)
            if self.peek("("):
                f.args = self.arguments()
            if self.peek("{"):
                f.children = self.selection_set()
            fields.append(f)
        self.take("}")
        return fields

    def arguments(self) -> dict:
        self.take("(")
        args = {}
        while not self.peek(")"):
            if self.peek(","):
                self.take()
                continue
            key = self.take()[1]
            self.take(":")
            args[key] = self.value()
        self.take(")")
        return args

    def value(self):
        kind, text = self.take()
        if kind == "str":
            return json.loads(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text == "$":
            return self.variables.get(self.take()[1])
        if text == "[":
            items = []
            while not self.peek("]"):
                if self.peek(","):
                    self.take()
                    continue
                items.append(self.value())
            self.take("]")
            return items
        if text == "{":
            obj = {}
            while not self.peek("}"):
                if self.peek(","):
                    self.take()
                    continue
                key = self.take()[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        return text  # an enum value


def parse(source: str, variables: dict | None = None) -> tuple[str, list[Field]]:
    return _Parser(source, variables or {}).document()


class UndefinedField(Exception):
    def __init__(self, field_name: str, type_name: str):
        super().__init__(f"Field '{field_name}' doesn't exist on type '{type_name}'")


def project(value, fields: list[Field], type_name: str = "Object"):
    """Keep only the selected fields of a resolved value, as GraphQL does."""
    if value is None or not fields:
        return value
    if isinstance(value, list):
        return [project(v, fields, type_name) for v in value]
    out = {}
    for f in fields:
        if f.name == "__typename":
            out[f.key] = value.get("__typename", type_name)
            continue
        if f.name not in value:
            raise UndefinedField(f.name, value.get("__typename", type_name))
        out[f.key] = project(value[f.name], f.children, f.name)
    return out


def cost(fields: list[Field], *, counts: dict[int, int] | None = None) -> int:
    """Shopify's calculated cost, roughly: objects cost 1, scalars 0, and a connection costs
    2 plus `first` times the cost of one node. With `counts` (id(field) → items actually
    returned) it gives the actual cost instead of the requested one."""
    total = 0
    for f in fields:
        if not f.children:
            continue
        if "first" in f.args or "last" in f.args:
            n = (counts or {}).get(id(f), f.args.get("first") or f.args.get("last") or 0)
            node = 0
            for child in f.children:
                if child.name == "nodes":
                    node = max(node, 1 + cost(child.children))
                elif child.name == "edges":
                    inner = next((c for c in child.children if c.name == "node"), None)
                    node = max(node, 1 + cost(inner.children) if inner else 1)
            total += 2 + int(n) * node
        else:
            total += 1 + cost(f.children, counts=counts)
    return total
