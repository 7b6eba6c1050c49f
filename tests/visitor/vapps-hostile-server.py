#!/usr/bin/python3
"""vapps-hostile-server.py - a raw HTTP server with canned, partly malformed
answers for the download client's tests (tests/visitor/test-visitor-apps.c).
Usage: vapps-hostile-server.py PORT PIDFILE.  One answer per connection,
chosen by the request path; the connection is closed after it."""
import os
import socket
import sys
import threading

ANSWERS = {
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    "/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    "/hugeheader": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\nbody",
    "/badstatus": b"garbage\r\n\r\n",
    "/loop": b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n",
    "/relative": b"HTTP/1.1 302 Found\r\nLocation: chunked\r\nContent-Length: 3\r\n\r\nabc",
    "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
    "/conflict": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                b"Content-Type: application/pdf; x=y\r\n\r\nok",
    "/eof": b"HTTP/1.0 200 OK\r\n\r\nread to the end",
}


def serve(conn):
    try:
        conn.settimeout(10)
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 8192:
            chunk = conn.recv(4096)
            if not chunk:
                return
            req += chunk
        path = req.split(b" ")[1].decode("latin-1") if b" " in req else ""
        conn.sendall(ANSWERS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    s.listen(16)
    with open(sys.argv[2], "w") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
