"""A client generated from openapi/openapi.json by openapi-python-client, used as an
integrator would against a running gateway: book a shipment, read it, list and page
shipments, page /v1/events, read problem answers. Every answer is validated against the
document (status declared, content type declared, body valid against its schema) by an
httpx response hook, so the generated models and the document are both judged.

Usage: client_check.py --base URL --key API_KEY --ecourier CONNECTION_ID --doc openapi.json
(the generated package `shipgate_client` must be importable).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid

import httpx
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shipgate_client import AuthenticatedClient
from shipgate_client.api.shipments import create_shipment, get_shipment, list_shipments
from shipgate_client.api.webhooks import list_events
from shipgate_client.models import Problem, ShipmentIn, ShipmentOut, ShipmentPage, EventPage

DOC_URI = "urn:shipgate:openapi"


class DocumentValidator:
    """Checks each answer against the operation it answers in the document."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
        self.routes = []
        for path, item in doc["paths"].items():
            pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"
            self.routes.append((re.compile(pattern), path, item))
        self.checked = 0
        self.failures: list[str] = []

    def _pointer(self, *parts: str) -> str:
        return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)

    def check(self, response: httpx.Response) -> None:
        response.read()
        req = response.request
        method = req.method.lower()
        where = f"{req.method} {req.url.path} -> {response.status_code}"
        route = next(((p, item) for rx, p, item in self.routes if rx.match(req.url.path) and method in item), None)
        if route is None:
            self.failures.append(f"{where}: no such operation in the document")
            return
        path, item = route
        responses = item[method]["responses"]
        status = str(response.status_code)
        if status not in responses:
            self.failures.append(f"{where}: status not declared (declared: {', '.join(sorted(responses))})")
            return
        declared = responses[status]
        pointer_base: tuple[str, ...] = ("paths", path, method, "responses", status)
        if "$ref" in declared:
            name = declared["$ref"].rsplit("/", 1)[-1]
            declared = self.doc["components"]["responses"][name]
            pointer_base = ("components", "responses", name)
        content = declared.get("content", {})
        body = response.content
        if not content:
            if body:
                self.failures.append(f"{where}: a body where the document declares none")
            self.checked += 1
            return
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media not in content:
            self.failures.append(f"{where}: content type {media!r} not declared ({', '.join(content)})")
            return
        schema_ptr = self._pointer(*pointer_base, "content", media, "schema")
        validator = Draft202012Validator(
            {"$ref": DOC_URI + schema_ptr}, registry=self.registry, format_checker=FormatChecker()
        )
        if media.endswith("json"):
            instance = json.loads(body)
        else:
            instance = body.decode()
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        for e in errors[:5]:
            path_s = "/".join(str(p) for p in e.absolute_path)
            self.failures.append(f"{where}: body breaks the schema at /{path_s}: {e.message[:300]}")
        self.checked += 1


def booking(connection_id: str, reference: str) -> ShipmentIn:
    return ShipmentIn.from_dict(
        {
            "connection_id": connection_id,
            "reference": reference,
            "stops": [
                {
                    "sequence": 1,
                    "type": "pickup",
                    "name": "James Madison",
                    "address": {
                        "line1": "2251 Orange Blossom Trail",
                        "city": "Orlando",
                        "state": "FL",
                        "postal_code": "32804",
                        "country": "US",
                    },
                    "scheduled_at": "2026-11-23T06:00:00-05:00",
                },
                {
                    "sequence": 2,
                    "type": "delivery",
                    "name": "Bryan Moore",
                    "address": {
                        "line1": "2253 Orange Blossom Trail",
                        "city": "Orlando",
                        "state": "FL",
                        "postal_code": "32804",
                        "country": "US",
                    },
                },
            ],
            "parcels": [{"reference": "PKG-1", "quantity": 1, "weight": {"value": 2.5, "unit": "lb"}}],
            "metadata": {"erp_order": reference},
        }
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ecourier", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--write-shipment-id", help="write the first booked shipment's id here (for the fuzzer)")
    args = ap.parse_args()
    with open(args.doc, encoding="utf-8") as f:
        validator = DocumentValidator(json.load(f))
    client = AuthenticatedClient(
        base_url=args.base,
        token=args.key,
        timeout=httpx.Timeout(30.0),
        httpx_args={"event_hooks": {"response": [validator.check]}},
    )
    problems: list[str] = []

    def expect(cond: bool, what: str) -> None:
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            problems.append(what)

    run = uuid.uuid4().hex[:8]
    with client as c:
        booked = []
        for n in range(3):
            r = create_shipment.sync_detailed(
                client=c, body=booking(args.ecourier, f"CC-{run}-{n}"), idempotency_key=f"cc-{run}-{n}"
            )
            expect(r.status_code == 201 and isinstance(r.parsed, ShipmentOut), f"book shipment {n}: {r.status_code}")
            if isinstance(r.parsed, ShipmentOut):
                booked.append(r.parsed)
        if booked:
            first = booked[0]
            if args.write_shipment_id:
                with open(args.write_shipment_id, "w", encoding="utf-8") as f:
                    f.write(first.id)
            expect(first.booking is not None and first.booking.state == "booked", "the booking is booked")
            r = get_shipment.sync_detailed(client=c, id=first.id)
            expect(
                isinstance(r.parsed, ShipmentOut) and r.parsed.id == first.id and r.parsed.reference == first.reference,
                "read the shipment back",
            )

        seen: list[str] = []
        cursor = None
        for _ in range(3):
            kwargs = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
            r = list_shipments.sync_detailed(client=c, **kwargs)
            expect(isinstance(r.parsed, ShipmentPage), f"list shipments page {len(seen) // 2 + 1}")
            if not isinstance(r.parsed, ShipmentPage):
                break
            seen.extend(s.id for s in r.parsed.data)
            cursor = r.parsed.next_cursor
            if not cursor:
                break
        expect(len(seen) >= 3 and len(seen) == len(set(seen)), f"paging shipments: {len(seen)} distinct")
        expect(all(s.id in seen for s in booked), "every booked shipment is listed")

        events: list[str] = []
        cursor = None
        for _ in range(5):
            kwargs = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
            r = list_events.sync_detailed(client=c, **kwargs)
            expect(isinstance(r.parsed, EventPage), f"/v1/events page {len(events) // 2 + 1}")
            if not isinstance(r.parsed, EventPage):
                break
            events.extend(e.id for e in r.parsed.data)
            cursor = r.parsed.next_cursor
            if not cursor:
                break
        expect(len(events) >= 4 and len(events) == len(set(events)), f"paging /v1/events: {len(events)} distinct")

        r = get_shipment.sync_detailed(client=c, id="shp_00000000000000000000000000000000")
        expect(
            r.status_code == 404 and isinstance(r.parsed, Problem) and r.parsed.code == "not_found",
            f"a problem answer: 404 {getattr(r.parsed, 'code', None)}",
        )
        bad = booking(args.ecourier, f"CC-{run}-bad").to_dict()
        bad["stops"][0]["address"]["country"] = "USA"
        r = create_shipment.sync_detailed(client=c, body=ShipmentIn.from_dict(bad))
        fields = [e.field for e in (r.parsed.errors or [])] if isinstance(r.parsed, Problem) else []
        expect(
            r.status_code == 422 and "stops[0].address.country" in fields,
            f"a validation problem names the field: {fields}",
        )

    with httpx.Client(base_url=args.base, event_hooks={"response": [validator.check]}) as raw:
        r = raw.get("/v1/shipments")
        expect(r.status_code == 401 and r.json().get("code") == "unauthorized", "no API key: 401 problem")

    for f in validator.failures:
        print("FAIL  " + f)
    print(f"{validator.checked} answers validated against the document, {len(validator.failures)} broke it")
    return 1 if problems or validator.failures else 0


if __name__ == "__main__":
    sys.exit(main())
