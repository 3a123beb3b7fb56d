"""A loopback HTTPS (CONNECT) proxy that routes chosen host names to loopback ports.

The SDK's `requests` calls honour HTTPS_PROXY, so pointing HTTPS_PROXY here sends its traffic for
login.botframework.com / login.microsoftonline.com to the loopback identity provider, leaving the
production code path untouched. Any other host is refused (403): a test can never reach the internet.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading


class LoopbackConnectProxy:
    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = routes  # host name -> loopback port
        self.connects: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LoopbackConnectProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def hosts_connected(self) -> set[str]:
        with self._lock:
            return {target.split(":")[0] for target in self.connects}

    def _handler_class(self) -> type[socketserver.BaseRequestHandler]:
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            # Unbuffered: no byte of the tunnel may be left behind in a reader's buffer.
            rbufsize = 0

            def handle(self) -> None:
                request_line = self.rfile.readline(8192).decode("latin-1").strip()
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                method, _, rest = request_line.partition(" ")
                target = rest.split(" ")[0]
                host, _, port = target.rpartition(":")
                if method != "CONNECT" or port != "443" or host not in proxy.routes:
                    with proxy._lock:
                        proxy.refused.append(request_line)
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                with proxy._lock:
                    proxy.connects.append(target)
                upstream = socket.create_connection(("127.0.0.1", proxy.routes[host]))
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe_both_ways(self.connection, upstream)

        return Handler


def _pipe_both_ways(client: socket.socket, upstream: socket.socket) -> None:
    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    other = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    other.start()
    copy(client, upstream)
    other.join(timeout=5)
    upstream.close()
