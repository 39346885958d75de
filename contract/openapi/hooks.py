"""schemathesis hooks for contract/openapi/run.sh.

`not_a_server_error_but_carrier`: no answer is a 5xx, except the documented 502/503 of an
operation that calls a carrier (`x-carrier-call: true` in the document) when the problem
says the carrier failed (`code` carrier_unavailable or carrier_protocol_error). The sandbox's
simulators answer on loopback, but the fuzzer creates connections with base URLs that lead
nowhere, and a carrier that cannot be reached is answered 503 by design (docs/product.md).
"""

import json

import schemathesis

CARRIER_CODES = {"carrier_unavailable", "carrier_protocol_error"}


@schemathesis.check
def not_a_server_error_but_carrier(ctx, response, case):
    if response.status_code < 500:
        return None
    raw = case.operation.definition.raw
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        code = None
    if raw.get("x-carrier-call") and response.status_code in (502, 503) and code in CARRIER_CODES:
        return None
    raise AssertionError(f"server error {response.status_code} (code {code!r}) from {case.operation.label}")
