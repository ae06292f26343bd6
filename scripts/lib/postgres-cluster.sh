# Sourced by the test and benchmark scripts that need a PostgreSQL server:
# `start_postgres_cluster` installs Debian's `postgresql` (and openssl, for a test CA) if missing,
# makes a throwaway cluster with `initdb` in a temporary directory owned by an unprivileged user (we
# may run as root, which PostgreSQL refuses), with TLS from a test CA, starts it on a free loopback
# port and exports
#   KEYPLANE_TEST_POSTGRES   a superuser address (the attack tests edit rows as an administrator)
#   KEYPLANE_TEST_PG_BIN, KEYPLANE_TEST_PG_DATA, KEYPLANE_TEST_PG_RUN_AS (the fault tests restart it)
#   KEYPLANE_TEST_PG_CA      the test CA (the TLS tests use verify-full against it)
# It sets an EXIT trap that stops and removes the cluster; a caller with its own EXIT trap calls
# `stop_postgres_cluster` from it instead.

pg_step() { printf '\n==> %s\n' "$*"; }

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

start_postgres_cluster() {
  pg_bin=$(find_bin || true)
  if ! command -v openssl >/dev/null; then
    pg_step "installing Debian's openssl (the test CA)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  if [ -z "$pg_bin" ]; then
    pg_step "installing Debian's postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin=$(find_bin)
  fi

  run_as=()
  owner=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then
    owner=keyplane-pg
    id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
    run_as=(runuser -u "$owner" --)
  fi

  cluster=$(mktemp -d /tmp/keyplane-pg.XXXXXX)
  chown "$owner" "$cluster"
  chmod 700 "$cluster"

  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_step "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') cluster in $cluster on 127.0.0.1:$port (as $owner)"
  "${run_as[@]}" "$pg_bin/initdb" -D "$cluster/data" -U postgres --auth=trust -E UTF8 >/dev/null
  # A test CA and a server certificate for localhost / 127.0.0.1: the TLS tests connect with
  # sslmode=require and verify-full against this CA.
  tls=$cluster/tls
  mkdir "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=keyplane-test-ca \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/ext"
  openssl x509 -req -days 2 -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
  chown -R "$owner" "$tls"
  chmod 600 "$tls/server.key"
  chmod 644 "$tls/ca.pem"

  # The settings go into the cluster's configuration (not `pg_ctl -o`), so that the fault tests'
  # `pg_ctl stop` and `start` bring it back the same.
  cat >>"$cluster/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$cluster'
max_connections = 300
ssl = on
ssl_cert_file = '$tls/server.pem'
ssl_key_file = '$tls/server.key'
CONF
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w start >/dev/null

  export KEYPLANE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
  export KEYPLANE_TEST_PG_BIN=$pg_bin
  export KEYPLANE_TEST_PG_DATA=$cluster/data
  export KEYPLANE_TEST_PG_RUN_AS=${run_as[*]:-}
  export KEYPLANE_TEST_PG_CA=$tls/ca.pem
  trap stop_postgres_cluster EXIT
}

stop_postgres_cluster() {
  [ -n "${cluster:-}" ] || return 0
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$cluster/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$cluster"
  cluster=
}
