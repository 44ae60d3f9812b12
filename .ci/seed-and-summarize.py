"""Seed a live chorus-hookd for schemathesis, or summarise its run.

`seed BASE TOKEN` creates an agent, a hook with a rule, an event that makes a
task and a delivery, and prints `export ST_…=…` lines for .ci/run to eval.
`summary HAR OPENAPI` prints, per operation, how many answers of each status
class schemathesis got: the run's coverage.
"""

import hashlib
import hmac
import json
import re
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict


def call(base, token, method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def seed(base, token):
    secret = "seeded-secret-0123456789"
    call(base, token, "POST", "/api/agents", {"name": "seeded", "channel_id": "4242"})
    hook = call(base, token, "POST", "/api/webhooks", {
        "agent": "seeded", "source": "chorus", "webhook_id": "seeded-hook", "secret": secret,
        "commands": [{"trigger": "*", "action": "create_task", "template": "Seeded {{title}}"}],
    })
    # A public address literal: no DNS needed, and the subscription's event
    # is one nothing emits, so nothing is sent to it.
    outgoing = call(base, token, "POST", "/api/webhooks", {
        "type": "outgoing", "agent": "seeded", "url": "https://1.1.1.1/chorus-seed", "events": ["custom.seeded"],
    })
    body = json.dumps({"type": "seed", "title": "hello"}).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(base + "/webhooks/chorus/seeded-hook", data=body, method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("x-chorus-signature-256", sig)
    urllib.request.urlopen(req, timeout=10).read()
    task = delivery = None
    for _ in range(100):
        tasks = call(base, token, "GET", "/api/tasks")["items"]
        deliveries = call(base, token, "GET", "/api/deliveries")["items"]
        if tasks and deliveries:
            task, delivery = tasks[0]["id"], deliveries[0]["id"]
            break
        time.sleep(0.1)
    if task is None:
        sys.exit("seeding failed: the seeded event made no task")
    # A workflow whose run waits at an approval gate.
    call(base, token, "POST", "/api/workflows", {
        "name": "seeded-flow", "agent": "seeded", "secret": secret,
        "steps": [{"name": "gate", "tool": "emit_event", "requires_approval": True,
                   "args": {"event": "custom.seeded"}}],
    })
    run = call(base, token, "POST", "/api/workflows/seeded-flow/test", {"seeded": True})["body"]["run_id"]
    print(f"export ST_AGENT=seeded ST_HOOK=seeded-hook ST_RULE={hook['commands'][0]['id']} "
          f"ST_OUTGOING={outgoing['id']} ST_TASK={task} ST_DELIVERY={delivery} "
          f"ST_WORKFLOW=seeded-flow ST_RUN={run}")


def summary(har_path, openapi_path):
    with open(openapi_path) as f:
        paths = json.load(f)["paths"]
    patterns = [(p, re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$")) for p in paths]
    with open(har_path) as f:
        entries = json.load(f)["log"]["entries"]
    counts = defaultdict(Counter)
    for e in entries:
        path = urllib.parse.urlparse(e["request"]["url"]).path
        method = e["request"]["method"]
        template = next((p for p, rx in patterns if rx.match(path)), None)
        # Probes of undocumented methods are not operations.
        if template is None or method.lower() not in paths[template]:
            continue
        counts[(method, template)][f"{e['response']['status'] // 100}xx"] += 1
    reached = 0
    for (method, template), c in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ok = c.get("2xx", 0)
        reached += ok > 0
        print(f"{method:6} {template:48} " + " ".join(f"{k}={v}" for k, v in sorted(c.items())))
    print(f"{reached} of {len(counts)} operations reached a success answer")


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3])
    else:
        summary(sys.argv[2], sys.argv[3])
