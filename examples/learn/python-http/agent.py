"""Fetches the URL its config names with urllib (which uses HTTP_PROXY).

With --extra it also fetches a second URL, on a host:port the learned
profile has never seen (cordon's proxy must refuse it).
"""
import json
import sys
import urllib.request

with open("config.json") as f:
    config = json.load(f)

print("fetched:", urllib.request.urlopen(config["url"], timeout=10).read().decode().strip())
if "--extra" in sys.argv:
    print("also fetched:", urllib.request.urlopen(config["extra_url"], timeout=10).read().decode().strip())
