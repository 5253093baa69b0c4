#!/usr/bin/env bash
# The cluster's MLflow tracking server (docs/cluster.md), on a host of the cluster's private network:
#   bash deploy/mlflow/server.sh     # first start: MLFLOW_AUTH_ADMIN_PASSWORD set from your secret store
# Every request needs a user and password (MLflow's basic-auth app; users: docs/cluster.md). No secret
# is on a command line: PostgreSQL's password comes from ~/.pgpass (libpq reads it), the admin's from
# MLFLOW_AUTH_ADMIN_PASSWORD on the first start, the key that signs its CSRF tokens from a file
# (once: umask 077; mkdir -p ~/.mlflow; openssl rand -hex 32 > ~/.mlflow/server-secret), and clients
# read theirs from ~/.mlflow/credentials.
# The variables below default to the cluster's names; tests point them at a local SQLite store.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MLFLOW_AUTH_CONFIG_PATH=${MLFLOW_AUTH_CONFIG_PATH:-$here/basic_auth.ini}
export MLFLOW_FLASK_SERVER_SECRET_KEY=${MLFLOW_FLASK_SERVER_SECRET_KEY:-$(cat ~/.mlflow/server-secret)}
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false  # no job runner processes on the tracking host
host=${MLFLOW_SERVER_HOST:-$(hostname -I | awk '{print $1}')}  # the private address, not 0.0.0.0
exec mlflow server --app-name basic-auth --host "$host" --port "${MLFLOW_SERVER_PORT:-5000}" \
    --allowed-hosts "${MLFLOW_SERVER_ALLOWED_HOSTS:-mlflow.internal:5000}" \
    --backend-store-uri "${MLFLOW_BACKEND_STORE_URI:-postgresql://mlflow@postgres.internal:5432/mlflow}" \
    --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-s3://geosweep-results/mlflow-artifacts}"
