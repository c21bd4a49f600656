"""A small OpenAI-compatible server for tests: answers from a script on a free port, records requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    """An OpenAI-compatible server on a free port: answers from a script, records every request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict]] = []  # (status, body) per request; the last one repeats
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(self.rfile.read(length))}
                )
                status, body = server.script[min(len(server.requests), len(server.script)) - 1]
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def completion_choices(*texts):
    return {"object": "text_completion", "choices": [{"index": i, "text": t} for i, t in enumerate(texts)]}
