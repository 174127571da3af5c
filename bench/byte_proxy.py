#!/usr/bin/env python3
"""A TCP relay that counts the bytes of each connection, for bench/client_clone.sh.

    byte_proxy.py LISTEN_PORT TARGET_PORT LOG

Relays 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT and, when a connection ends, appends
"UP DOWN" to LOG: the bytes the client sent and the bytes it received, TCP payload only.
"""
import socket
import sys
import threading


def pump(src, dst, counter, index):
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            counter[index] += len(data)
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(client, target_port, log):
    upstream = socket.create_connection(("127.0.0.1", target_port))
    counter = [0, 0]
    up = threading.Thread(target=pump, args=(client, upstream, counter, 0))
    up.start()
    pump(upstream, client, counter, 1)
    up.join()
    client.close()
    upstream.close()
    with open(log, "a") as f:
        f.write(f"{counter[0]} {counter[1]}\n")


def main():
    listen_port, target_port, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(16)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, target_port, log), daemon=True).start()


if __name__ == "__main__":
    main()
