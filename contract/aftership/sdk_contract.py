"""The AfterShip 2024-04 contract as the official SDK states it.

Everything here is read from `aftership-tracking-sdk` 2.0.2 (pinned in requirements.txt),
the last release on `/tracking/2024-04`: the paths and query keys from the source of its
API methods (`tracking/api/*.py`), the request models from their signatures, the answer
models from their return types. Nothing is restated by hand, so the judge is the SDK.

Strictness: the SDK's pydantic models ignore unknown fields, so `check_model` also
refuses any field outside the model (recursively), and validates types in pydantic's
strict mode.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Optional

from pydantic import BaseModel, ValidationError

import tracking
from tracking import models as M
from tracking.api import EstimatedDeliveryDateApi, LastCheckpointApi, TrackingApi

API_VERSION = "2024-04"

# The SDK operations the simulator serves (courier and notification APIs are out of scope).
OPERATIONS = {
    TrackingApi: [
        "create_tracking",
        "get_trackings",
        "get_tracking_by_id",
        "update_tracking_by_id",
        "delete_tracking_by_id",
        "retrack_tracking_by_id",
        "mark_tracking_completed_by_id",
        "get_tracking_by_slug_tracking_number",
        "update_tracking_by_slug_tracking_number",
        "delete_tracking_by_slug_tracking_number",
        "retrack_tracking_by_slug_tracking_number",
        "mark_tracking_completed_by_slug_tracking_number",
    ],
    LastCheckpointApi: ["get_checkpoint_by_tracking_id", "get_checkpoint_by_slug_tracking_number"],
    EstimatedDeliveryDateApi: ["predict_batch"],
}

# The meta types an error may carry (seed 002: "Allowed values: BadRequest Unauthorized
# Forbidden NotFound TooManyRequests InternalError").
META_TYPES = {"BadRequest", "Unauthorized", "Forbidden", "NotFound", "TooManyRequests", "InternalError"}


@dataclass
class Operation:
    name: str
    method: str
    path_re: re.Pattern
    query_keys: frozenset
    request_model: Optional[type]
    wrapped: bool  # body is {"tracking": {...}}
    answer_model: type  # the model of `data` on the wire
    answer_key: Optional[str]  # `data[answer_key]` holds answer_model (e.g. "tracking")


def _function_ast(fn) -> ast.FunctionDef:
    src = textwrap.dedent(inspect.getsource(inspect.unwrap(fn)))
    return ast.parse(src).body[0]


def _url_regex(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            parts.append(re.escape(v.value) if isinstance(v, ast.Constant) else "[^/]+")
        return "".join(parts)
    raise ValueError(f"unexpected url expression {ast.dump(node)}")


def _models_in(annotation) -> list:
    """BaseModel subclasses named by an annotation (through Optional/Union/List)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _operation(api_cls, name: str) -> Operation:
    fn = getattr(api_cls, name)
    tree = _function_ast(fn)
    url = method = None
    query_keys: set = set()
    wrapped = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "url":
                url = _url_regex(node.value)
            elif target == "params_keys":
                query_keys = {elt.value for elt in node.value.elts}
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "_request":
            method = node.args[0].value
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "tracking" for k in node.keys):
            wrapped = True
    hints = typing.get_type_hints(inspect.unwrap(fn))
    request_models = [m for k, a in hints.items() if k != "return" for m in _models_in(a)]
    ret = hints["return"]
    source = inspect.getsource(inspect.unwrap(fn))
    if ret is M.GetTrackingsResponse:
        # The SDK rebuilds its GetTrackingsResponse from the wire's page/limit/count; the
        # wire's `data` is DataTrackingResponseGetMultipleV1 (models/tracking_response_get_multiple_v1.py).
        answer_model, answer_key = M.DataTrackingResponseGetMultipleV1, None
    elif 'result.get("tracking")' in source:
        answer_model, answer_key = ret, "tracking"
    else:
        answer_model, answer_key = ret, None
    assert url and method, f"cannot read {name} from the SDK"
    return Operation(
        name=name,
        method=method,
        path_re=re.compile(url + "$"),
        query_keys=frozenset(query_keys),
        request_model=request_models[0] if request_models else None,
        wrapped=wrapped,
        answer_model=answer_model,
        answer_key=answer_key,
    )


def operations() -> list[Operation]:
    ops = [_operation(cls, n) for cls, names in OPERATIONS.items() for n in names]
    # Longer, more specific paths first: /trackings/{id}/retrack before /trackings/{slug}/{number}.
    return sorted(ops, key=lambda o: (-o.path_re.pattern.count("/"), "[^/]+" in o.path_re.pattern.split("/")[-1]))


def classify(ops: list[Operation], method: str, path: str) -> Optional[Operation]:
    """The SDK operation a request is (path may carry a mount prefix before /tracking/)."""
    i = path.find(f"/tracking/{API_VERSION}/")
    if i < 0:
        return None
    sub = path[i:]
    for op in ops:
        if op.method == method.upper() and op.path_re.match(sub):
            return op
    return None


def _field_models(model: type, key: str) -> list:
    return _models_in(model.model_fields[key].annotation)


def extra_fields(model: type, data: Any, path: str) -> list[str]:
    """Fields in `data` the model does not have, recursively."""
    errors = []
    if not isinstance(data, dict):
        return errors
    for key, value in data.items():
        if key not in model.model_fields:
            errors.append(f"{path}.{key}: not a field of {model.__name__}")
            continue
        for sub in _field_models(model, key):
            if isinstance(value, dict):
                errors += extra_fields(sub, value, f"{path}.{key}")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    errors += extra_fields(sub, item, f"{path}.{key}[{i}]")
    return errors


def check_model(model: type, data: Any, path: str) -> list[str]:
    """Errors of `data` against `model`: unknown fields, then strict type validation."""
    if not isinstance(data, dict):
        return [f"{path}: expected an object for {model.__name__}, got {type(data).__name__}"]
    errors = extra_fields(model, data, path)
    try:
        model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as e:
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            errors.append(f"{path}.{loc}: {err['msg']}")
    return errors


def check_request(ops: list[Operation], method: str, path: str, body: Any) -> list[str]:
    """Errors of one request (method, path with optional query, parsed body or None)."""
    bare, _, query = path.partition("?")
    op = classify(ops, method, bare)
    if op is None:
        return [f"not an AfterShip {API_VERSION} operation of the SDK"]
    errors = []
    for key in {k for k, _ in _parse_query(query)} - op.query_keys:
        errors.append(f"query `{key}`: not a parameter of {op.name}")
    if op.request_model is None:
        if body not in (None, {}, ""):
            errors.append(f"body: {op.name} takes no body")
        return errors
    if body is None:
        return errors + [f"body: {op.name} needs a {op.request_model.__name__}"]
    if op.wrapped:
        if not isinstance(body, dict) or set(body) != {"tracking"}:
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            return errors + [f"body: must be exactly {{\"tracking\": {{...}}}}, got {keys}"]
        return errors + check_model(op.request_model, body["tracking"], "tracking")
    return errors + check_model(op.request_model, body, "body")


def _parse_query(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def sdk_version() -> str:
    from importlib.metadata import version

    return version("aftership-tracking-sdk")


__all__ = ["operations", "classify", "check_model", "check_request", "extra_fields", "META_TYPES", "tracking"]
