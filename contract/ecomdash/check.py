#!/usr/bin/env python3
"""ecomdash contract check: the seed's own JSON Schemas judge request and answer bodies.

The two schemas in this folder are copied verbatim from the ecomdash API page (seed 004,
"Shipments - Submit Tracking Info"). What is checked:

  (a) the seed's own examples (contract/fixtures/ecomdash/seed.*.json);
  (b) the answers captured from our simulator (contract/fixtures/ecomdash/*.response.json)
      and the requests that produced them (*.request.json valid, *.invalid-request.json
      refused);
  (c) with --requests FILE.jsonl [FILE.jsonl ...]: every request body recorded elsewhere
      (one JSON value per line: the body itself, or an object with a "body" member such as
      an entry of the simulator's GET /_sim/requests; entries whose "op" or "path" is not
      submitTrackingInfo are skipped), e.g. what the gateway's tests sent. Files that hold
      no request at all fail the run: the judge must have something to judge.

Requests are judged strictly: the request schema (additionalProperties: false, numbers,
strings), `format: date-time` asserted, and the seed's field table, which the schema cannot
express (ShipmentId required; TrackingNumber "Required if LineItems are not passed in";
LineItems[i].LineItemId required; LineItems[i].TrackingNumber "Required if the base request
is missing a TrackingNumber"; ids are Integers, so 28.0 is fine and 28.5 is not).

Answers are judged against the answer schema read the way its generator (Swagger 2.0 from
.NET types) meant it, because read literally it refuses the seed's own example:
  1. nulls: Json.NET writes a null member for every unset property and the seed's example
     answers `"pagination": null`, `"CarrierId": null`, `"Messages": null`; Swagger 2.0 has
     no `nullable`, so every property is allowed to be null;
  2. allOf: `data.items` declares `Request` with `additionalProperties: false` and puts
     `WasSuccessful`/`Messages` in an `allOf` member that is also closed, so literally no
     object can satisfy both; the `allOf` member's properties are merged into the item.
The request template of the seed (`ShipmentId: 0.0`, dates `"string"`) is the API portal's
generated placeholder: it is checked against the request schema with formats as
annotations only (JSON Schema's default), and the field table is not applied to it.

Dates: the seed's example dates have no offset (`2016-07-18T12:57:33`) and its table says
"The date or date/time", which is what ASP.NET binds; `date-time` here accepts a date, or a
date-time with seconds, an optional fraction and an optional Z/offset, as the simulator does.

Exit status 0 when everything holds; the last line reads "N passed, M failed".
"""

import argparse
import copy
import datetime
import json
import pathlib
import re
import sys

import jsonschema

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "ecomdash"
REQUEST_SCHEMA = json.loads((HERE / "list-of-fulfillment-request.schema.json").read_text())
RESPONSE_SCHEMA = json.loads((HERE / "response-list-update-shipment-response.schema.json").read_text())
MESSAGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["Message"],
    "properties": {"Message": {"type": "string"}},
}

DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$")


def is_date_time(value):
    if not isinstance(value, str):
        return True  # type errors are the schema's to report
    if not DATE_TIME.match(value):
        return False
    text = value[:19] if len(value) >= 19 else value
    try:
        if len(text) == 10:
            datetime.date.fromisoformat(text)
        else:
            datetime.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(is_date_time)


def nullable(schema):
    """Repair 1: every declared property may also be null."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            for prop in node.get("properties", {}).values():
                t = prop.get("type")
                if isinstance(t, str):
                    prop["type"] = [t, "null"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def merge_all_of(schema):
    """Repair 2: fold closed allOf members' properties into the schema that holds them."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            for member in node.pop("allOf", []) if "properties" in node else []:
                node["properties"].update(member.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


REQUEST_STRICT = jsonschema.Draft4Validator(REQUEST_SCHEMA, format_checker=FORMATS)
REQUEST_LOOSE = jsonschema.Draft4Validator(REQUEST_SCHEMA)
RESPONSE = jsonschema.Draft4Validator(nullable(merge_all_of(RESPONSE_SCHEMA)), format_checker=FORMATS)
MESSAGE = jsonschema.Draft4Validator(MESSAGE_SCHEMA)


def whole_positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and float(value).is_integer()


def blank(value):
    return not isinstance(value, str) or not value.strip()


def table_errors(body):
    """The seed's field table, for a body the schema already accepts."""
    errors = []
    for i, item in enumerate(body if isinstance(body, list) else []):
        if not isinstance(item, dict):
            continue
        if "ShipmentId" not in item:
            errors.append(f"[{i}].ShipmentId is required")
        elif not whole_positive(item["ShipmentId"]):
            errors.append(f"[{i}].ShipmentId must be a whole number greater than 0")
        if "CarrierId" in item and not whole_positive(item["CarrierId"]):
            errors.append(f"[{i}].CarrierId must be a whole number greater than 0")
        lines = item.get("LineItems") or []
        if blank(item.get("TrackingNumber")) and not lines:
            errors.append(f"[{i}].TrackingNumber is required if LineItems are not passed in")
        for j, line in enumerate(lines):
            if not isinstance(line, dict):
                continue
            if "LineItemId" not in line:
                errors.append(f"[{i}].LineItems[{j}].LineItemId is required")
            elif not whole_positive(line["LineItemId"]):
                errors.append(f"[{i}].LineItems[{j}].LineItemId must be a whole number greater than 0")
            if "CarrierId" in line and not whole_positive(line["CarrierId"]):
                errors.append(f"[{i}].LineItems[{j}].CarrierId must be a whole number greater than 0")
            if blank(line.get("TrackingNumber")) and blank(item.get("TrackingNumber")):
                errors.append(
                    f"[{i}].LineItems[{j}].TrackingNumber is required if the base request is missing a TrackingNumber"
                )
    if isinstance(body, list) and not body:
        errors.append("the array must hold at least one item")
    return errors


def schema_errors(validator, body):
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(body)]


def request_errors(body):
    return schema_errors(REQUEST_STRICT, body) + table_errors(body)


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, errors):
        if errors:
            self.failed += 1
            print(f"FAIL {name}")
            for e in errors:
                print(f"     {e}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def check_fixtures(report):
    load = lambda p: json.loads(p.read_text())  # noqa: E731
    template = FIXTURES / "seed.request-template.json"
    report.check(template.name, schema_errors(REQUEST_LOOSE, load(template)))
    for path in sorted(FIXTURES.glob("seed.error-*.json")):
        report.check(path.name, schema_errors(MESSAGE, load(path)))
    for path in sorted(FIXTURES.glob("*.response.json")) + [FIXTURES / "seed.response-200.json"]:
        report.check(path.name, schema_errors(RESPONSE, load(path)))
    for path in sorted(FIXTURES.glob("*.request.json")):
        report.check(path.name, request_errors(load(path)))
    for path in sorted(FIXTURES.glob("*.invalid-request.json")):
        report.check(f"{path.name} is refused", [] if request_errors(load(path)) else ["accepted, expected refused"])
    # The repairs are needed: read literally, the answer schema refuses the seed's own answer.
    literal = jsonschema.Draft4Validator(RESPONSE_SCHEMA)
    seed_answer = load(FIXTURES / "seed.response-200.json")
    report.check("the literal answer schema refuses the seed's example", [] if schema_errors(literal, seed_answer) else ["accepted"])


def check_requests(report, path):
    """Judge every request body in one JSON-lines file; the number judged."""
    judged = 0
    for n, line in enumerate(pathlib.Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name = f"{path}:{n}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            report.check(name, [f"not JSON: {e}"])
            continue
        if isinstance(entry, dict) and "body" in entry:
            if entry.get("op", "submit_tracking_info") != "submit_tracking_info":
                continue
            if not str(entry.get("path", "submitTrackingInfo")).endswith("submitTrackingInfo"):
                continue
            entry = entry["body"]
        judged += 1
        report.check(name, request_errors(entry))
    return judged


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", metavar="FILE.jsonl", nargs="+", action="extend", default=[],
        help="also check every request body in these files (at least one body in all)",
    )
    parser.add_argument("--no-fixtures", action="store_true", help="check only --requests")
    args = parser.parse_args()
    report = Report()
    if not args.no_fixtures:
        check_fixtures(report)
    if args.requests:
        judged = sum(check_requests(report, path) for path in args.requests)
        print(f"{judged} recorded request body(ies) judged from {len(args.requests)} file(s)")
        if judged == 0:
            report.check("recorded requests", ["no request body in the given files: nothing was judged"])
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed or report.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
