#!/usr/bin/env bash
# Prometheus on the Ray head, for the Grafana dashboard (docs/monitoring.md). The checkout is on every
# node (cluster.yaml's file_mounts), so:
#   ray exec cluster.yaml 'bash ~/geosweep/deploy/prometheus/start-on-head.sh'
#   ray dashboard cluster.yaml --port 9090 --remote-port 9090 &   # Prometheus on http://127.0.0.1:9090
# It scrapes every node through the service-discovery file the Ray head keeps up to date. It listens on
# loopback only (the SSH tunnel above reaches it) and without --web.enable-lifecycle, which
# `ray metrics launch-prometheus` turns on (anyone reaching it could then stop or reload it over HTTP).
set -euo pipefail
command -v prometheus >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq prometheus; }
mkdir -p ~/prometheus-data
nohup prometheus \
    --config.file=/tmp/ray/session_latest/metrics/prometheus/prometheus.yml \
    --web.listen-address=127.0.0.1:9090 \
    --storage.tsdb.path="$HOME/prometheus-data" >~/prometheus.log 2>&1 &
echo "prometheus: pid $!, log ~/prometheus.log"
