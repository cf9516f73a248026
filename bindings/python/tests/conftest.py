"""Fixtures: a fresh Mission Control instance writing to a temporary store."""

import pytest

import mission_control as mc


@pytest.fixture
def control(tmp_path):
    c = mc.init(store=tmp_path / "store", service="test-agent", tenant="acme")
    yield c
    if not c.is_shut_down:
        c.shutdown()


def rows(table):
    """A pyarrow table as a list of dicts (times as ns since the epoch: Python's datetime stops
    at microseconds)."""
    import pyarrow as pa

    if "time" in table.column_names:
        i = table.column_names.index("time")
        table = table.set_column(i, "time", table.column(i).cast(pa.int64()))
    return table.to_pylist()


TLS_DIR = __import__("pathlib").Path(__file__).resolve().parents[3] / "mission-sdk" / "tests" / "tls"


class Receiver:
    """A real HTTPS server on loopback (Python's http.server and ssl) serving the test
    certificate in mission-sdk/tests/tls/, signed by the test CA ``ca_file``; keeps every
    request as (path, headers, body)."""

    ca_file = str(TLS_DIR / "ca.pem")

    def __init__(self):
        import http.server
        import ssl
        import threading

        self.requests = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def https_receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fake_openai():
    """A fake OpenAI-compatible server on loopback (fake_openai_server.py)."""
    from fake_openai_server import FakeOpenAI

    server = FakeOpenAI()
    yield server
    server.close()
