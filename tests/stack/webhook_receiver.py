#!/usr/bin/env python3
"""Alertmanager webhook receiver for the local stack.

Stands in for a pager: every notification Alertmanager POSTs is appended, as one JSON
line, to --log. Tests and the demo read that file (or GET /alerts) to see what paged.

  POST /alerts     store one Alertmanager webhook payload
  GET  /alerts     every payload received so far, as a JSON list
  GET  /healthz    200 when serving
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="JSON-lines file the payloads are appended to")
    args = parser.parse_args()
    open(args.log, "a").close()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_error(400, "body is not JSON")
                return
            with LOCK, open(args.log, "a") as log:
                log.write(json.dumps(payload, separators=(",", ":")) + "\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                body = b"ok\n"
            elif self.path == "/alerts":
                with LOCK, open(args.log) as log:
                    body = ("[" + ",".join(line.strip() for line in log if line.strip()) + "]").encode()
            else:
                self.send_error(404, "try /alerts or /healthz")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
