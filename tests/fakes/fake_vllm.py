#!/usr/bin/env python3
"""A stand-in for the ``vllm`` executable in tests: ``fake_vllm.py serve MODEL --host H --port P ...``.

``FAKE_VLLM_MODE`` picks the behaviour: ``port`` / ``model`` / ``oom`` print the error vLLM prints
for that failure and exit 1; ``hang`` never becomes ready; ``ready`` answers ``GET /v1/models``.
Every mode first starts a child process (as vLLM starts engine workers) and writes both pids to
``FAKE_VLLM_PIDS`` so a test can check that none is left behind.
"""

import http.server
import json
import os
import subprocess
import sys
import time

mode = os.environ.get("FAKE_VLLM_MODE", "ready")
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
if os.environ.get("FAKE_VLLM_PIDS"):
    with open(os.environ["FAKE_VLLM_PIDS"], "w") as f:
        f.write(f"{os.getpid()} {worker.pid}\n")
print("INFO starting the API server", flush=True)
errors = {
    "port": f"OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): address already in use",
    "model": "OSError: /no/such/model does not appear to have a file named config.json.",
    "oom": "ValueError: No available memory for the cache blocks. Try increasing `VLLM_CPU_KVCACHE_SPACE`.",
}
if mode in errors:
    time.sleep(0.3)
    print("Traceback (most recent call last):\n  ...", file=sys.stderr)
    print(errors[mode], file=sys.stderr, flush=True)
    worker.kill()
    sys.exit(1)
if mode == "hang":
    time.sleep(600)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": args[1], "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
