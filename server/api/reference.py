"""The API reference, read from openapi.json: every operation with its parameters, body, answers, error codes
and an example call, every schema with its fields, and the error codes with where each can come back.
Pure: the `/docs/api` page (server/api/docs.py) renders what this builds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
CODES = re.compile(r"\s*Possible `code` values: ((?:`[a-z_]+`(?:, )?)+)\.?")
CODE = re.compile(r"`([a-z][a-z_]*)`")
HTTP_LAYER_CODE = re.compile(r"`([a-z][a-z_]*)` \((\d{3})\)")
EXAMPLE_KEY = "rn_test_..."
MAX_EXAMPLE_DEPTH = 4


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    schema: str | None
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str
    anchor: str
    operation_id: str
    summary: str
    description: str
    tag: str
    authenticated: bool
    parameters: tuple[Field, ...]
    body_types: tuple[str, ...]
    body_schema: str | None
    answers: tuple[Answer, ...]
    example_request: str
    example_response: str | None


@dataclass(frozen=True)
class Schema:
    name: str
    anchor: str
    type: str
    description: str
    fields: tuple[Field, ...]
    values: tuple[str, ...]  # for an enum


@dataclass(frozen=True)
class ErrorCode:
    code: str
    where: tuple[str, ...]  # "POST /api/v1/sessions (422)", ...


@dataclass(frozen=True)
class Reference:
    title: str
    version: str
    description: str
    operations: tuple[Operation, ...]
    webhooks: tuple[Operation, ...]
    schemas: tuple[Schema, ...]
    errors: tuple[ErrorCode, ...]
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def build(doc: dict[str, Any]) -> Reference:
    resolver = _Resolver(doc)
    operations = tuple(
        _operation(resolver, method, path, item, item[method]) for path, item in doc.get("paths", {}).items() for method in METHODS if method in item
    )
    webhooks = tuple(
        _operation(resolver, method, name, item, item[method], webhook=True)
        for name, item in doc.get("webhooks", {}).items()
        for method in METHODS
        if method in item
    )
    schemas = tuple(_schema(resolver, name, schema) for name, schema in doc.get("components", {}).get("schemas", {}).items())
    where: dict[str, list[str]] = {}
    for op in operations:
        for answer in op.answers:
            for code in answer.codes:
                where.setdefault(code, []).append(f"{op.method} {op.path} ({answer.status})")
    errors_paragraph = doc.get("info", {}).get("description", "").split("**Errors.**", 1)[-1].split("\n\n", 1)[0]
    for code, status in HTTP_LAYER_CODE.findall(errors_paragraph):
        where.setdefault(code, []).append(f"any request the HTTP layer refuses ({status})")
    info = doc.get("info", {})
    return Reference(
        title=info.get("title", "API"),
        version=info.get("version", ""),
        description=info.get("description", "").split("\n## ", 1)[0],
        operations=operations,
        webhooks=webhooks,
        schemas=schemas,
        errors=tuple(ErrorCode(code, tuple(dict.fromkeys(places))) for code, places in sorted(where.items())),
        tags=tuple((t["name"], t.get("description", "")) for t in doc.get("tags", [])),
    )


class _Resolver:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def follow(self, node: dict[str, Any]) -> dict[str, Any]:
        """The schema a $ref points at, with an allOf's parts merged in (how SessionCreated extends Session)."""
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        if isinstance(node, dict) and "allOf" in node:
            merged: dict[str, Any] = {"properties": {}, "required": []}
            for part in [*node["allOf"], {k: v for k, v in node.items() if k != "allOf"}]:
                part = self.follow(part)
                merged["properties"] |= part.get("properties", {})
                merged["required"] += part.get("required", [])
            node = merged | {"type": "object"}
        return node

    def example(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """A plausible value: the schema's own example, else one built from its type."""
        if depth > MAX_EXAMPLE_DEPTH:
            return None
        schema = self.follow(schema)
        if "examples" in schema:
            return schema["examples"][0]
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:  # a nullable enum (a decision not yet made) shows null
            return None if None in schema["enum"] else schema["enum"][0]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                options = [o for o in schema[key] if self.follow(o).get("type") != "null"]
                return self.example(options[0], depth + 1) if options else None
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or "properties" in schema:
            required = set(schema.get("required", []))
            return {
                name: self.example(sub, depth + 1)
                for name, sub in schema.get("properties", {}).items()
                if name in required or depth == 0 and "examples" in sub
            }
        if kind == "array":
            item = self.example(schema.get("items", {}), depth + 1)
            return [] if item is None else [item]
        return {"string": "string", "integer": schema.get("minimum", 0), "number": 0.0, "boolean": True}.get(kind or "")


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(_type_of(option) for option in schema[key])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    if "array" in kinds and "items" in schema:
        kinds = [f"array of {_type_of(schema['items'])}" if k == "array" else k for k in kinds]
    return " | ".join(kinds)


def _fields(schema: dict[str, Any]) -> tuple[Field, ...]:
    required = set(schema.get("required", []))
    return tuple(
        Field(name, _type_of(sub), name in required, sub.get("description", "")) for name, sub in schema.get("properties", {}).items()
    )


def _schema(resolver: _Resolver, name: str, schema: dict[str, Any]) -> Schema:
    values = tuple(json.dumps(v) for v in schema.get("enum", []))
    kind = " + ".join(_type_of(part) for part in schema["allOf"]) + " + object" if "allOf" in schema else _type_of(schema)
    return Schema(name, f"schema-{name}", kind, schema.get("description", ""), _fields(resolver.follow(schema)), values)


def _operation(resolver: _Resolver, method: str, path: str, item: dict[str, Any], op: dict[str, Any], webhook: bool = False) -> Operation:
    parameters = tuple(
        Field(f"{p['name']} ({p['in']})", _type_of(p.get("schema", {})), bool(p.get("required")), p.get("description", ""))
        for p in (resolver.follow(p) for p in [*item.get("parameters", []), *op.get("parameters", [])])
    )
    body = op.get("requestBody", {})
    content = body.get("content", {})
    body_schema = next((c["schema"] for c in content.values() if "schema" in c), None)
    answers = []
    success: dict[str, Any] | None = None
    for status, answer in op.get("responses", {}).items():
        answer = resolver.follow(answer)
        schema = next((c["schema"] for c in answer.get("content", {}).values() if "schema" in c), None)
        if success is None and status.startswith("2"):
            success = schema or {}
        match = CODES.search(answer.get("description", ""))
        codes = tuple(CODE.findall(match.group(1))) if match else ()
        description = CODES.sub("", answer.get("description", "")).strip()  # the codes get their own column
        answers.append(Answer(status, description, _type_of(schema) if schema else None, codes))
    authenticated = not webhook and op.get("security", resolver.doc.get("security")) != []
    return Operation(
        method=method.upper(),
        path=path,
        anchor=("webhook-" if webhook else "op-") + (op.get("operationId") or f"{method}-{path}"),
        operation_id=op.get("operationId", ""),
        summary=op.get("summary", ""),
        description=op.get("description", ""),
        tag=(op.get("tags") or ["webhooks" if webhook else "other"])[0],
        authenticated=authenticated,
        parameters=parameters,
        body_types=tuple(content),
        body_schema=_type_of(body_schema) if body_schema else None,
        answers=tuple(answers),
        example_request=_example_request(resolver, method, path, content, authenticated, webhook),
        example_response=json.dumps(resolver.example(success), indent=2, ensure_ascii=False) if success else None,
    )


def _example_request(resolver: _Resolver, method: str, path: str, content: dict[str, Any], authenticated: bool, webhook: bool) -> str:
    if webhook:
        schema = next((c["schema"] for c in content.values() if "schema" in c), {})
        return "POST <your callback_url>\n\n" + json.dumps(resolver.example(schema), indent=2, ensure_ascii=False)
    lines = [f"curl -s -X {method.upper()} \"$REALNAME_URL{path.replace('{id}', 'ses_3f9a0c1d2e4b5a6978877665')}\""]
    if authenticated:
        lines.append(f'  -H "Authorization: Bearer {EXAMPLE_KEY}"')
    if "application/json" in content:
        media = content["application/json"]
        example = next(iter(media.get("examples", {}).values()), {}).get("value") if media.get("examples") else None
        if example is None:
            example = resolver.example(media.get("schema", {}))
        lines.append('  -H "Content-Type: application/json"')
        lines.append(f"  -d '{json.dumps(example, ensure_ascii=False)}'")
    elif content:
        kind = next(iter(content))
        lines.append(f'  -H "Content-Type: {kind}" --data-binary @photo.{kind.rsplit("/", 1)[1]}')
    return " \\\n".join(lines)
