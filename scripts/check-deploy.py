#!/usr/bin/env python3
"""Checks what deploy/ does, beyond what linters and schemas see.

- every account_worker_* name used by the alerts and the dashboard is a
  metric the worker declares (a string literal under Sources/; a Timer's
  histogram adds _bucket, _sum and _count);
- alerts: each has a severity, summary, description and a runbook_url whose
  anchor is a heading of README.md; alerts.test.yml has, for each alert, a
  case where it fires and one where it does not; `promtool check rules` and
  `promtool test rules` pass;
- dashboard: namespace/job/instance variables, every query filtered by them,
  no fixed rate window (only $__rate_interval and friends), every query
  parsed by promtool, and the error-ratio panels turn red at the alert's
  threshold;
- Kubernetes objects without a bundled schema (PodMonitor, PrometheusRule,
  ScaledObject, TriggerAuthentication), structurally and against each other:
  the PodMonitor selects the Deployment's pods on a declared port and copies
  the label AccountWorkerDown keys on; the ScaledObject watches the group and
  topic the ConfigMap gives the worker and references the
  TriggerAuthentication, whose Secret keys exist in kafka-secret.example.yaml;
  kustomization.yaml lists every manifest (examples and the HPA alternative
  aside);
- compose: no initial rebalance delay, and its topic-creation script, run
  against stub Kafka tools, creates every topic the worker uses, results kept
  at least 35 days and the account status topic compacted.

Run by scripts/validate-deploy.sh with its venv (needs PyYAML) and promtool
(Debian package `prometheus`, installed by `make deps`).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
os.chdir(ROOT)
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


def load(path):
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def load_all(path):
    return [doc for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if doc]


# --- metric names -------------------------------------------------------------
declared = set()
for source in Path("Sources").rglob("*.swift"):
    declared.update(re.findall(r'"(account_worker_[a-z0-9_]+)"', source.read_text(encoding="utf-8")))
known = declared | {name + suffix for name in declared for suffix in ("_bucket", "_sum", "_count")}
check(declared, "no account_worker_* metric found under Sources/")

alerts_doc = load("deploy/prometheus/alerts.yml")
alerts = [rule for group in alerts_doc["groups"] for rule in group["rules"] if "alert" in rule]
dashboard = json.loads(Path("deploy/grafana/account-worker-dashboard.json").read_text(encoding="utf-8"))
targets = [(panel, target) for panel in dashboard["panels"] for target in panel.get("targets", [])]

used = set()
for rule in alerts:
    used.update(re.findall(r"\baccount_worker_[a-z0-9_]+", rule["expr"]))
for _, target in targets:
    used.update(re.findall(r"\baccount_worker_[a-z0-9_]+", target["expr"]))
for name in sorted(used - known):
    problems.append(f"{name} is used by the alerts or the dashboard but no Swift source declares it")

# --- alerts -------------------------------------------------------------------
def github_anchor(heading):
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


readme = Path("README.md").read_text(encoding="utf-8")
anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", readme, re.M)}
anchors |= set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', readme))
for rule in alerts:
    name = rule["alert"]
    check(rule.get("labels", {}).get("severity") in ("warning", "critical"), f"{name}: severity must be warning or critical")
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        check(annotations.get(key), f"{name}: no {key} annotation")
    url = annotations.get("runbook_url", "")
    match = re.search(r"README\.md#([\w-]+)$", url)
    if check(match, f"{name}: runbook_url {url!r} does not point into README.md#<anchor>"):
        check(match.group(1) in anchors, f"{name}: README.md has no heading or anchor #{match.group(1)}")
    check("job=" not in rule["expr"].replace(" ", ""), f"{name}: matches a job name, which differs between scrape setups")

tests = load("deploy/prometheus/alerts.test.yml")
fires, quiet = set(), set()
for case in tests.get("tests", []):
    for test in case.get("alert_rule_test", []):
        (fires if test.get("exp_alerts") else quiet).add(test["alertname"])
for rule in alerts:
    check(rule["alert"] in fires, f"alerts.test.yml: no case where {rule['alert']} fires")
    check(rule["alert"] in quiet, f"alerts.test.yml: no case where {rule['alert']} stays quiet")

promtool = shutil.which("promtool")
if check(promtool, "promtool not found: install Debian's `prometheus` package (`make deps` does)"):
    for argv in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([promtool, *argv], cwd="deploy/prometheus", capture_output=True, text=True)
        output = (done.stdout + done.stderr).strip()
        print(f"promtool {' '.join(argv)}\n" + "\n".join("  " + line for line in output.splitlines()))
        check(done.returncode == 0, f"promtool {' '.join(argv)} failed")
    done = subprocess.run([promtool, "check", "config", "--syntax-only", "deploy/prometheus/prometheus.yml"],
                          capture_output=True, text=True)
    check(done.returncode == 0, f"promtool check config deploy/prometheus/prometheus.yml:\n{done.stdout}{done.stderr}")

# --- dashboard ----------------------------------------------------------------
variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
for name in ("datasource", "namespace", "job", "instance"):
    check(name in variables, f"dashboard: no ${name} template variable")
for panel, target in targets:
    expr, where = target["expr"], f"dashboard panel {panel['title']!r} {target['refId']}"
    for name in ("namespace", "job", "instance"):
        check(f'{name}=~"${name}"' in expr, f"{where}: not filtered by {name}=~\"${name}\"")
    for window in re.findall(r"\[([^\]]+)\]", expr):
        check(window.startswith("$__"), f"{where}: fixed window [{window}] (use $__rate_interval)")
    check(panel.get("datasource", {}).get("uid") == "${datasource}", f"{where}: datasource is not ${{datasource}}")

threshold_rule = next((r for r in alerts if r["alert"] == "AccountWorkerHighErrorRate"), None)
if check(threshold_rule, "no AccountWorkerHighErrorRate alert"):
    threshold = float(re.search(r">\s*([0-9.]+)\s*$", threshold_rule["expr"].strip()).group(1))
    ratio_panels = [p for p in dashboard["panels"] if p["title"].lower().startswith("error ratio")]
    check(ratio_panels, "dashboard: no error-ratio panel")
    for panel in ratio_panels:
        steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
        red = [s["value"] for s in steps if s["color"] == "red"]
        check(red == [threshold], f"dashboard {panel['title']!r}: red at {red}, the alert fires above {threshold}")

if promtool:
    def concrete(expr):
        expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
        return re.sub(r"\$\{?(namespace|job|instance)\}?", ".*", expr)

    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel{panel['id']}_{target['refId']}", "expr": concrete(target["expr"])}
        for panel, target in targets]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(rules, handle)
    done = subprocess.run([promtool, "check", "rules", handle.name], capture_output=True, text=True)
    os.unlink(handle.name)
    check(done.returncode == 0, f"dashboard queries do not parse:\n{done.stdout}{done.stderr}")

# --- Kubernetes ---------------------------------------------------------------
k8s = Path("deploy/k8s")
deployment = load(k8s / "deployment.yaml")
pod = deployment["spec"]["template"]
pod_labels = pod["metadata"]["labels"]
ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
config = load(k8s / "configmap.yaml")["data"]

monitor = load(k8s / "podmonitor.yaml")
check(monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "PodMonitor", "podmonitor.yaml: not a PodMonitor")
selector = monitor["spec"]["selector"]["matchLabels"]
check(selector and all(pod_labels.get(k) == v for k, v in selector.items()),
      f"PodMonitor selector {selector} does not match the Deployment's pod labels {pod_labels}")
for endpoint in monitor["spec"]["podMetricsEndpoints"]:
    check(endpoint.get("port") in ports, f"PodMonitor port {endpoint.get('port')!r} is not a named container port {sorted(ports)}")
    check(endpoint.get("path", "/metrics") == "/metrics", "PodMonitor path is not /metrics")
check("app.kubernetes.io/name" in monitor["spec"].get("podTargetLabels", []),
      "PodMonitor must copy app.kubernetes.io/name (AccountWorkerDown keys on app_kubernetes_io_name)")
check(pod_labels.get("app.kubernetes.io/name") == "account-worker", "the Deployment's pods lack app.kubernetes.io/name: account-worker")
down = next((r for r in alerts if r["alert"] == "AccountWorkerDown"), {"expr": ""})
check('app_kubernetes_io_name="account-worker"' in down["expr"], "AccountWorkerDown does not key on app_kubernetes_io_name")
annotations = pod["metadata"].get("annotations", {})
check(annotations.get("prometheus.io/port") == str(ports.get("http")), "prometheus.io/port differs from the http port")
scrape = load("deploy/prometheus/prometheus.yml")
check(any(r.get("target_label") == "app_kubernetes_io_name" and r.get("replacement") == "account-worker"
          for job in scrape["scrape_configs"] for r in job.get("relabel_configs", [])),
      "compose's prometheus.yml does not set app_kubernetes_io_name (AccountWorkerDown would always fire)")

rule = load(k8s / "prometheusrule.yaml")
check(rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule", "prometheusrule.yaml: not a PrometheusRule")
check(rule["spec"]["groups"] == alerts_doc["groups"], "prometheusrule.yaml does not hold alerts.yml's groups")
check(rule["metadata"].get("labels", {}).get("release") == monitor["metadata"].get("labels", {}).get("release"),
      "the PrometheusRule and the PodMonitor carry different release labels")

board = load(k8s / "grafana-dashboard-configmap.yaml")
check(board["kind"] == "ConfigMap" and board["metadata"].get("labels", {}).get("grafana_dashboard") == "1",
      "grafana-dashboard-configmap.yaml: not a ConfigMap labelled grafana_dashboard: \"1\"")
check([json.loads(v) for v in board.get("data", {}).values()] == [dashboard],
      "grafana-dashboard-configmap.yaml does not hold the dashboard")

scaled = load(k8s / "keda-scaledobject.yaml")
auth = load(k8s / "keda-triggerauthentication.yaml")
check(auth["apiVersion"] == "keda.sh/v1alpha1" and auth["kind"] == "TriggerAuthentication", "keda-triggerauthentication.yaml: not a TriggerAuthentication")
check(scaled["apiVersion"] == "keda.sh/v1alpha1" and scaled["kind"] == "ScaledObject", "keda-scaledobject.yaml: not a ScaledObject")
check(scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"], "the ScaledObject scales another Deployment")
kafka_params = {"sasl", "saslTokenProvider", "username", "password", "tls", "ca", "cert", "key", "keyPassword", "unsafeSsl",
                "keytab", "realm", "kerberosConfig", "kerberosServiceName", "oauthTokenEndpointUri", "scopes", "oauthExtensions"}
secret_refs = auth["spec"].get("secretTargetRef", [])
check(secret_refs, "the TriggerAuthentication references no Secret")
for ref in secret_refs:
    check(ref.get("parameter") in kafka_params, f"TriggerAuthentication parameter {ref.get('parameter')!r} is not one of KEDA's Kafka scaler's")
    check(ref.get("name") and ref.get("key"), f"TriggerAuthentication {ref.get('parameter')}: needs name and key")
example = load(k8s / "kafka-secret.example.yaml")
for ref in secret_refs:
    check(ref.get("name") == example["metadata"]["name"] and ref.get("key") in example.get("stringData", {}),
          f"kafka-secret.example.yaml lacks {ref.get('name')}/{ref.get('key')}")
for trigger in scaled["spec"]["triggers"]:
    meta = trigger["metadata"]
    check(trigger.get("authenticationRef", {}).get("name") == auth["metadata"]["name"],
          "the ScaledObject's Kafka trigger does not reference the TriggerAuthentication (authenticationRef)")
    check(meta.get("consumerGroup") == config["KAFKA_GROUP_ID"], "the ScaledObject watches another consumer group than KAFKA_GROUP_ID")
    check(meta.get("topic") == config["COMMAND_TOPIC"], "the ScaledObject watches another topic than COMMAND_TOPIC")
    check(meta.get("bootstrapServers") == config["KAFKA_BROKERS"], "the ScaledObject's bootstrapServers differ from KAFKA_BROKERS")

kustomization = load(k8s / "kustomization.yaml")
resources = kustomization.get("resources", [])
for resource in resources:
    check((k8s / resource).exists(), f"kustomization.yaml lists {resource}, which does not exist")
for manifest in sorted(k8s.glob("*.yaml")):
    if manifest.name == "kustomization.yaml" or manifest.name.endswith(".example.yaml") or manifest.name == "hpa.yaml":
        continue
    check(manifest.name in resources, f"kustomization.yaml does not list {manifest.name}")

# --- compose ------------------------------------------------------------------
compose = load("deploy/compose.yaml")
services = compose["services"]
check(str(services["kafka"]["environment"].get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS")) == "0",
      "compose: KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS is not 0")
worker_env = services["worker"].get("environment", {})
wanted = {
    "commands": worker_env.get("COMMAND_TOPIC", "runway.accounts.commands"),
    "results": worker_env.get("RESULT_TOPIC", "runway.accounts.results"),
    "dlq": worker_env.get("DLQ_TOPIC", "runway.accounts.dlq"),
    "status": worker_env.get("STATUS_TOPIC", "runway.accounts.status"),
}
topics = services["topics"]
script = topics["command"][-1] if isinstance(topics["command"], list) else topics["command"]
script = script.replace("$$", "$")  # compose's escape for a literal $
with tempfile.TemporaryDirectory() as stub:
    log = Path(stub) / "calls"
    for tool in ("kafka-topics.sh", "kafka-configs.sh"):
        path = Path(stub) / tool
        path.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        path.chmod(0o755)
    done = subprocess.run(["bash", "-c", script.replace("/opt/kafka/bin/", stub + "/")], capture_output=True, text=True)
    check(done.returncode == 0, f"compose topics script fails against stub Kafka tools:\n{done.stderr}")
    calls = log.read_text().splitlines() if log.exists() else []
created, configs = set(), {}
for call in calls:
    words = call.split()
    if words[0] == "kafka-topics.sh" and "--create" in words:
        created.add(words[words.index("--topic") + 1])
    if words[0] == "kafka-configs.sh" and "--alter" in words:
        name = words[words.index("--entity-name") + 1]
        for pair in words[words.index("--add-config") + 1].split(","):
            key, _, value = pair.partition("=")
            configs.setdefault(name, {})[key] = value
    if words[0] == "kafka-topics.sh" and "--config" in words:
        for i, word in enumerate(words):
            if word == "--config":
                key, _, value = words[i + 1].partition("=")
                configs.setdefault(words[words.index("--topic") + 1], {})[key] = value
for role, name in wanted.items():
    if name:
        check(name in created, f"compose creates no {role} topic {name}")
retention = int(configs.get(wanted["results"], {}).get("retention.ms", 7 * 86_400_000))
check(retention == -1 or retention >= 35 * 86_400_000, f"compose keeps results {retention / 86_400_000:g} days (< 35)")
check(configs.get(wanted["status"], {}).get("cleanup.policy") == "compact", "compose: the account status topic is not compacted")

print(f"metrics declared in Sources: {len(declared)}; used by alerts and dashboard: {', '.join(sorted(used))}")
print(f"alerts: {len(alerts)}, each with a firing and a quiet test; dashboard: {len(dashboard['panels'])} panels, {len(targets)} queries")
print(f"compose topics: {', '.join(f'{n} {configs.get(n, {})}' if configs.get(n) else n for n in sorted(created))}")
if problems:
    print("\n".join(f"FAIL: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print("deploy structure checks passed")
