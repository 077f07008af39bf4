"""Reads its config, asks a local TCP service for an answer, prints it.

With --extra it also asks a second service, one the learned profile has
never seen (cordon run must refuse that connection).
"""
import json
import socket
import sys

with open("config.json") as f:
    config = json.load(f)


def ask(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"hello\n")
        return s.recv(100).decode().strip()


print("service says:", ask(config["port"]))
if "--extra" in sys.argv:
    print("second service says:", ask(config["extra_port"]))
