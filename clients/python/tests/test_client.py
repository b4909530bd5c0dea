"""The REST client: retries as the Go SDK does, against a local HTTP server that answers what
each test needs."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from govlog import APIError, Client, TransportError, VerificationError, parse_note_key, parse_retry_after

TESTDATA = os.environ.get("GOVLOG_TESTDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "testdata")


def read(path: str) -> bytes:
    with open(os.path.join(TESTDATA, path), "rb") as f:
        return f.read()


RECEIPT = read("receipts/allow.json")
DECISION = read("decisions/valid/minimal.json")
LOG_KEY = parse_note_key(read("keys/log.vkey").decode())


class Server:
    """A local HTTP server: answer(method, path, body) returns (status, headers, body)."""

    def __init__(self, answer):
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                outer.requests.append("%s %s" % (self.command, self.path))
                status, headers, out = answer(self.command, self.path, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = handle_one

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def error(status, code, headers=None):
    return status, dict({"Content-Type": "application/json"}, **(headers or {})), json.dumps({"error": {"code": code, "message": code + " happened"}}).encode()


def test_retries_and_retry_after():
    statuses = [503, 429, 502, 504]

    def answer(method, path, body):
        if statuses:
            st = statuses.pop(0)
            return error(st, "overloaded" if st == 429 else "log_unavailable", {"Retry-After": "2"} if st == 503 else None)
        return 201, {"Content-Type": "application/json"}, RECEIPT

    s = Server(answer)
    waits = []
    try:
        got = Client(s.url, log_key=LOG_KEY, sleep=waits.append).submit_decision(DECISION)
        assert got.created and got.verified.entry.id == "d-1"
        assert len(s.requests) == 5
        assert waits[0] == 2.0
        assert all(0.1 <= w <= 5.0 for w in waits[1:]), waits
    finally:
        s.close()


def test_gives_up():
    s = Server(lambda m, p, b: error(503, "log_unavailable"))
    try:
        with pytest.raises(TransportError, match="gave up after 3 attempts"):
            Client(s.url, max_attempts=3, sleep=lambda w: None).submit_decision(DECISION)
        assert len(s.requests) == 3
    finally:
        s.close()


@pytest.mark.parametrize("status,code", [(400, "invalid_decision"), (409, "id_conflict"), (413, "too_large"), (422, "unknown_parent"), (500, "internal")])
def test_final_errors_are_not_retried(status, code):
    s = Server(lambda m, p, b: error(status, code))
    try:
        with pytest.raises(APIError) as e:
            Client(s.url, sleep=lambda w: None).submit_decision(DECISION)
        assert (e.value.status, e.value.code) == (status, code)
        assert len(s.requests) == 1
    finally:
        s.close()


def test_long_retry_after_is_returned():
    s = Server(lambda m, p, b: error(429, "overloaded", {"Retry-After": "120"}))
    waits = []
    try:
        with pytest.raises(TransportError, match="retry after 120s"):
            Client(s.url, sleep=waits.append).submit_decision(DECISION)
        assert waits == []
    finally:
        s.close()


def test_no_answer_is_retried():
    # Nothing listens on port 1 (a port found free and closed could be taken
    # by another process meanwhile).
    url = "http://127.0.0.1:1"
    waits = []
    with pytest.raises(TransportError, match="gave up after 2 attempts"):
        Client(url, max_attempts=2, sleep=waits.append).submit_decision(DECISION)
    assert len(waits) == 1


def test_receipt_must_verify_and_hold_the_submission():
    tampered = RECEIPT.replace(b'"index": 0', b'"index": 1')
    for body, submitted in ((tampered, DECISION), (RECEIPT, DECISION.replace(b'"deploy"', b'"delete"'))):
        s = Server(lambda m, p, b, body=body: (201, {"Content-Type": "application/json"}, body))
        try:
            with pytest.raises(VerificationError) as e:
                Client(s.url, log_key=LOG_KEY).submit_decision(submitted)
            assert e.value.code == "mismatch"
        finally:
            s.close()


def test_parse_retry_after():
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Wed, 25 Nov 2026 18:00:00 GMT").timestamp()
    assert parse_retry_after("3", now) == 3
    assert parse_retry_after("Wed, 25 Nov 2026 18:00:05 GMT", now) == 5
    assert parse_retry_after("Wed, 25 Nov 2026 17:00:05 GMT", now) == 0
    assert parse_retry_after("soon", now) == 0
    assert parse_retry_after(None, now) == 0
    assert parse_retry_after("-1", now) == 0
