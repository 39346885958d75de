#!/usr/bin/env python3
"""The client of bench/abuse.sh (issue 10 "Done when"): standard library only, loopback only.

Against a running gateway (pid known, so its RSS can be read from /proc) it
1. sends 10,000 failed inbound authentications (60 KB connection ids on both inbound
   routes, well-formed unknown ids, wrong passwords for a real connection) and 1,000
   bad API keys, printing RSS before and after each;
2. opens stalled connections (silent, half a request head, half a body) and prints the
   longest any of them stays open;
3. sends a corpus of hostile inputs and counts server errors (5xx; 0 expected).
"""

import argparse
import concurrent.futures as cf
import http.client
import json
import os
import select
import socket
import time
import urllib.parse

LONG_ID = "con_" + "a" * 60_000


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host, port):
        self.host, self.port, self.conn = host, port, None

    def send(self, method, path, headers=None, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (http.client.HTTPException, ConnectionError, socket.timeout):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def basic(user, password):
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def run_parallel(host, port, jobs, workers=16):
    """jobs: list of (method, path, headers, body); returns {status: count}."""
    counts = {}
    chunks = [jobs[i::workers] for i in range(workers)]

    def worker(chunk):
        c, local = Client(host, port), {}
        for method, path, headers, body in chunk:
            status, _ = c.send(method, path, headers, body)
            local[status] = local.get(status, 0) + 1
        return local

    with cf.ThreadPoolExecutor(workers) as ex:
        for local in ex.map(worker, chunks):
            for k, v in local.items():
                counts[k] = counts.get(k, 0) + v
    return dict(sorted(counts.items()))


def failed_inbound(args, n):
    scan = json.dumps({"awb": "ABUSE1", "datetime": "2026-11-22 10:30:00", "status": "x", "reason_code_number": "002",
                       "status_update_number": "1"}).encode()
    ecom_path = urllib.parse.urlparse(args.ecom_url).path
    jobs = []
    for i in range(n):
        kind = i % 4
        headers = {"content-type": "application/json", "authorization": basic(args.ecom_user, "wrong-password-guess"),
                   "aftership-hmac-sha256": "Z3Vlc3M="}
        if kind == 0:
            path = f"/v1/inbound/ecomexpress/{LONG_ID}"
        elif kind == 1:
            path = f"/v1/inbound/aftership/{LONG_ID}"
        elif kind == 2:
            path = f"/v1/inbound/ecomexpress/con_{os.urandom(16).hex()}"
        else:
            path = ecom_path
        jobs.append(("POST", path, headers, scan))
    return run_parallel(args.host, args.port, jobs)


def bad_keys(args, n):
    env_id, secret = args.key.rsplit("_", 1)
    jobs = []
    for i in range(n):
        key = f"{env_id}_{'x' * len(secret)}" if i % 2 else f"sg_live_key{os.urandom(6).hex()}_{secret}"
        jobs.append(("GET", "/v1/shipments", {"authorization": f"Bearer {key}"}, None))
    return run_parallel(args.host, args.port, jobs)


def stalled(args, per_kind=10, cap=90):
    """Open stalled connections; returns {kind: longest seconds open} (capped)."""
    body_head = (f"POST /v1/connections HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {args.key}\r\n"
                 "content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"carrier\":").encode()
    kinds = {"silent": b"", "half a head": b"POST /v1/shipments HTTP/1.1\r\nhost: x\r\n", "half a body": body_head}
    socks = []
    for kind, prefix in kinds.items():
        for _ in range(per_kind):
            s = socket.create_connection((args.host, args.port))
            if prefix:
                s.sendall(prefix)
            socks.append((kind, s, time.monotonic()))
    longest = {k: 0.0 for k in kinds}
    first_bytes = {}
    open_ = {s.fileno(): (k, s, t) for k, s, t in socks}
    deadline = time.monotonic() + cap
    while open_ and time.monotonic() < deadline:
        ready, _, _ = select.select([s for _, s, _ in open_.values()], [], [], 0.05)
        for s in ready:
            kind, _, started = open_[s.fileno()]
            try:
                data = s.recv(65536)
            except ConnectionError:
                data = b""
            if data:
                first_bytes.setdefault(kind, data.split(b"\r\n", 1)[0].decode(errors="replace"))
                continue
            longest[kind] = max(longest[kind], time.monotonic() - started)
            del open_[s.fileno()]
            s.close()
    for kind, s, started in open_.values():
        longest[kind] = float("inf")
        s.close()
    return longest, first_bytes


def corpus(args):
    """(name, method, path, headers, body) — hostile inputs; none may reach a 5xx."""
    key = {"authorization": f"Bearer {args.key}", "content-type": "application/json"}
    ecom = {"authorization": basic(args.ecom_user, args.ecom_password), "content-type": "application/json"}
    ecom_path = urllib.parse.urlparse(args.ecom_url).path
    con, hook = args.connection_id, args.endpoint_id
    ship = {
        "connection_id": con, "reference": "ABUSE-1", "service": "Route",
        "stops": [{"sequence": 1, "type": "pickup", "name": "A", "address": {"line1": "1 A St", "city": "Orlando",
                   "postal_code": "32804", "country": "US"}},
                  {"sequence": 2, "type": "delivery", "name": "B", "address": {"line1": "2 B St", "city": "Orlando",
                   "postal_code": "32804", "country": "US"}}],
        "parcels": [{"reference": "P1", "quantity": 1, "weight": {"value": 2.5, "unit": "lb"}}],
    }

    def with_(**kw):
        d = json.loads(json.dumps(ship))
        d.update(kw)
        return json.dumps(d).encode()

    push = {"awb": "ABUSE2", "datetime": "2026-11-22 10:30:00", "status": "x", "reason_code_number": "002",
            "status_update_number": "9"}

    def push_with(**kw):
        d = dict(push)
        d.update(kw)
        return json.dumps(d).encode()

    nest = b"[" * 10_000 + b"]" * 10_000
    big = "x" * 250_000
    cases = [
        # NUL bytes everywhere (issue 9 and 10.3)
        ("NUL in reference", "POST", "/v1/shipments", key, with_(reference="a\u0000b")),
        ("NUL in carrier", "POST", "/v1/shipments", key, with_(carrier="eco\u0000urier")),
        ("NUL in tracking_number", "POST", "/v1/shipments", key, with_(tracking_number="1Z\u0000")),
        ("NUL in connection_id", "POST", "/v1/shipments", key, with_(connection_id="con_\u0000")),
        ("NUL in a metadata key", "POST", "/v1/shipments", key, with_(metadata={"a\u0000": "b"})),
        ("NUL in /v1/events shipment_id", "GET", "/v1/events?shipment_id=%00", key, None),
        ("NUL in status-mappings carrier", "GET", "/v1/status-mappings?carrier=%00", key, None),
        ("NUL in unmapped carrier", "GET", "/v1/status-mappings/unmapped?carrier=%00", key, None),
        ("NUL in shipments filter", "GET", "/v1/shipments?reference=%00&carrier=%00", key, None),
        ("NUL in a path id", "GET", "/v1/shipments/shp_%00", key, None),
        ("NUL in connection name", "POST", "/v1/connections", key,
         json.dumps({"carrier": "ecourier", "name": "n\u0000", "credentials": {}}).encode()),
        ("NUL in ecom push value", "POST", ecom_path, ecom, push_with(extra="a\u0000b")),
        ("NUL in ecom push key", "POST", ecom_path, ecom, push_with(**{"\u0000": "v"})),
        ("literal backslash-u0000 text", "POST", "/v1/shipments", key, with_(reference="\\u0000")),
        # dates outside what Postgres stores
        ("replay since year -262143", "POST", f"/v1/webhook-endpoints/{hook}/replay", key,
         b'{"since":"-262143-01-01T00:00:00Z"}'),
        ("created_after year -262143", "GET", "/v1/shipments?created_after=-262143-01-01T00:00:00Z", key, None),
        ("created_before year +262142", "GET", "/v1/shipments?created_before=%2B262142-12-31T23:59:59Z", key, None),
        ("scheduled_at year 99999", "POST", "/v1/shipments", key,
         with_(stops=[dict(ship["stops"][0], scheduled_at="+99999-01-01T00:00:00Z"), ship["stops"][1]])),
        ("ecom datetime nonsense", "POST", ecom_path, ecom, push_with(datetime="99999-99-99 99:99:99")),
        # numbers
        ("weight 1e308", "POST", "/v1/shipments", key,
         with_(parcels=[{"reference": "P", "quantity": 1, "weight": {"value": 1e308, "unit": "lb"}}])),
        ("weight 1e400", "POST", "/v1/shipments", key,
         with_(parcels=[]).replace(b'"parcels": []', b'"parcels": [{"reference":"P","quantity":1,"weight":{"value":1e400,"unit":"lb"}}]')),
        ("quantity 2^64", "POST", "/v1/shipments", key,
         with_(parcels=[{"reference": "P", "quantity": 18446744073709551616}])),
        ("negative quantity", "POST", "/v1/shipments", key, with_(parcels=[{"reference": "P", "quantity": -1}])),
        ("limit huge", "GET", "/v1/shipments?limit=99999999999999999999", key, None),
        ("limit negative", "GET", "/v1/shipments?limit=-1", key, None),
        ("status_update_number as number", "POST", ecom_path, ecom, push_with(status_update_number=12345678901234567890)),
        # structure and encodings
        ("deep nesting", "POST", "/v1/shipments", key, with_(metadata={}).replace(b'"metadata": {}', b'"metadata": ' + nest)),
        ("deep nesting in ecom push", "POST", ecom_path, ecom, b'{"awb":' + nest + b"}"),
        ("invalid UTF-8", "POST", "/v1/shipments", key, b'{"reference":"\xff\xfe"}'),
        ("lone surrogate", "POST", "/v1/shipments", key, with_(reference="x").replace(b'"x"', b'"\\ud800"')),
        ("trailing data", "POST", "/v1/connections", key, b'{"carrier":"ecourier","name":"n"} trailing'),
        ("two documents", "POST", ecom_path, ecom, push_with() + push_with()),
        ("duplicate keys", "POST", "/v1/shipments", key, b'{"reference":"a","reference":"b"}'),
        ("array body", "POST", "/v1/shipments", key, b"[]"),
        ("null body", "POST", ecom_path, ecom, b"null"),
        ("empty body", "POST", "/v1/shipments", key, b""),
        ("UTF-16 body", "POST", "/v1/shipments", dict(key, **{"content-type": "application/json; charset=utf-16"}),
         with_().decode().encode("utf-16")),
        ("no content type", "POST", "/v1/shipments", {"authorization": key["authorization"]}, with_()),
        ("text/plain", "POST", "/v1/shipments", dict(key, **{"content-type": "text/plain"}), with_()),
        ("unknown fields", "POST", "/v1/shipments", key, with_(id="shp_x", tenant_id="ten_x", status="delivered")),
        ("percent-encoded garbage path", "GET", "/v1/shipments/%ff%fe%00", key, None),
        ("invalid UTF-8 query", "GET", "/v1/shipments?reference=%ff%fe", key, None),
        ("cursor garbage", "GET", "/v1/shipments?cursor=%%%%", key, None),
        ("unknown query parameter", "GET", "/v1/events?nope=1", key, None),
        ("unknown enum", "GET", "/v1/shipments?status=bogus", key, None),
        # sizes
        ("250 KB service", "POST", "/v1/shipments", key, with_(service=big[:200_000])),
        ("250 KB connection name", "POST", "/v1/connections", key,
         json.dumps({"carrier": "ecourier", "name": big[:200_000], "credentials": {}}).encode()),
        ("body over the limit", "POST", "/v1/shipments", key, b'{"reference":"' + b"x" * 400_000 + b'"}'),
        ("ecom body over its limit", "POST", ecom_path, ecom, push_with(extra="x" * 20_000)),
        ("200 KB URL", "GET", "/v1/shipments/" + "a" * 200_000, key, None),
        ("100 KB header", "GET", "/v1/shipments", dict(key, **{"x-big": "h" * 100_000}), None),
        # auth and idempotency oddities
        ("Idempotency-Key with spaces", "POST", "/v1/shipments", dict(key, **{"idempotency-key": "a b"}), with_()),
        ("Idempotency-Key 10 KB", "POST", "/v1/shipments", dict(key, **{"idempotency-key": "k" * 10_000}), with_()),
        ("Bearer with 10 KB token", "GET", "/v1/shipments", {"authorization": "Bearer sg_test_" + "a" * 10_000}, None),
        ("Basic with invalid base64", "POST", ecom_path, {"authorization": "Basic %%%", "content-type": "application/json"},
         push_with()),
        ("AfterShip signature garbage", "POST", f"/v1/inbound/aftership/{con}",
         {"aftership-hmac-sha256": "%%%", "content-type": "application/json"}, b"{}"),
        ("webhook URL with NUL", "POST", "/v1/webhook-endpoints", key, json.dumps({"url": "http://a\u0000.example/"}).encode()),
        ("webhook URL to metadata", "POST", "/v1/webhook-endpoints", key, b'{"url":"http://[::ffff:169.254.169.254]/"}'),
        ("PATCH credentials with NUL", "PATCH", f"/v1/connections/{con}", key,
         json.dumps({"credentials": {"password": "p\u0000"}}).encode()),
        ("method not allowed", "DELETE", "/v1/shipments", key, None),
    ]
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--connection-id", required=True)
    ap.add_argument("--endpoint-id", required=True)
    ap.add_argument("--ecom-url", required=True)
    ap.add_argument("--ecom-user", required=True)
    ap.add_argument("--ecom-password", required=True)
    ap.add_argument("--inbound", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=1_000)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.base)
    if u.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit("loopback only")
    args.host, args.port = u.hostname, u.port

    print(f"RSS at start: {rss_mib(args.pid):.1f} MiB")
    t = time.monotonic()
    counts = failed_inbound(args, args.inbound)
    print(f"{args.inbound} failed inbound authentications in {time.monotonic() - t:.1f} s: statuses {counts}; "
          f"RSS {rss_mib(args.pid):.1f} MiB")
    t = time.monotonic()
    counts = bad_keys(args, args.keys)
    print(f"{args.keys} bad API keys in {time.monotonic() - t:.1f} s: statuses {counts}; RSS {rss_mib(args.pid):.1f} MiB")

    longest, first = stalled(args)
    for kind, secs in longest.items():
        said = f", answered {first[kind]!r}" if kind in first else ""
        print(f"stalled connections ({kind}): longest open {secs:.1f} s{said}")
    print(f"longest a stalled connection stayed open: {max(longest.values()):.1f} s")

    c = Client(args.host, args.port)
    server_errors, statuses = [], {}
    cases = corpus(args)
    for name, method, path, headers, body in cases:
        try:
            status, data = c.send(method, path, headers, body)
        except Exception as e:  # a reset is not a server error, but say so
            print(f"  {name}: connection error {e!r}")
            continue
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500:
            server_errors.append(f"{name} -> {status} {data[:120]!r}")
    print(f"hostile inputs: {len(cases)} cases, statuses {dict(sorted(statuses.items()))}")
    for e in server_errors:
        print(f"  server error: {e}")
    print(f"server errors: {len(server_errors)}")
    print(f"RSS at end: {rss_mib(args.pid):.1f} MiB")


if __name__ == "__main__":
    main()
