#!/usr/bin/env python3
"""Validate recorded AfterShip requests against the official SDK's 2024-04 request models.

Usage: check_requests.py FILE.jsonl [FILE.jsonl ...]

Each line is one request: {"method": "POST", "path": "/tracking/2024-04/trackings",
"body": {...}} (the path may carry a mount prefix and a `?query`; an optional "query"
string is also read, as the simulator's request log has it). Every body must validate
against the SDK model of its operation with unknown fields refused, every query key must
be one the SDK sends for it, and every path must be an SDK operation.

Exit status 0 when all requests pass, 1 naming each offending request and field (or
when the files hold no request at all: the judge must have something to judge), 2 on
unreadable input.
"""

from __future__ import annotations

import json
import sys

from sdk_contract import check_request, operations


def check_records(records, source: str) -> list[str]:
    """Problems of (line number, record) pairs, one message per offending field."""
    ops = operations()
    problems = []
    for where, rec in records:
        method, path = rec.get("method", "?"), rec.get("path", "?")
        if rec.get("query"):
            path = f"{path}?{rec['query']}"
        body = rec.get("body")
        if isinstance(body, str) and body:
            try:
                body = json.loads(body)
            except ValueError:
                problems.append(f"{source}:{where}: {method} {path}: body is not JSON")
                continue
        for err in check_request(ops, method, path, body):
            problems.append(f"{source}:{where}: {method} {path}: {err}")
    return problems


def read_jsonl(name: str):
    with open(name, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield n, json.loads(line)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problems, count = [], 0
    for name in argv[1:]:
        try:
            records = list(read_jsonl(name))
        except (OSError, ValueError) as e:
            print(f"{name}: cannot read: {e}", file=sys.stderr)
            return 2
        count += len(records)
        problems += check_records(records, name)
    for p in problems:
        print(p)
    print(f"{count} request(s) checked against aftership-tracking-sdk 2.0.2 (API 2024-04): "
          f"{len(problems)} problem(s)", file=sys.stderr)
    if count == 0:
        print("no request in the given files: nothing was judged", file=sys.stderr)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
