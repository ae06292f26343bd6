#!/usr/bin/env bash
# SoftHSMv2 tokens for tests, written once: sourced by the test scripts, and run as a command by
# the tests themselves (Rust, C, Python), which find it through KEYPLANE_SOFTHSM (exported by
# `softhsm_export`) or, in the Rust tests, by its path in the repository.
#
#   scripts/lib/softhsm.sh module
#       prints the path of libsofthsm2.so (Debian's softhsm2 package), or fails saying so
#   scripts/lib/softhsm.sh token DIR LABEL PIN [SO_PIN]
#       makes DIR (if missing) with DIR/softhsm2.conf (tokens in DIR/tokens, file object store,
#       errors only in the log) and initialises a token labelled LABEL with user PIN PIN in the
#       next free slot (several tokens may share one DIR), then prints
#         SOFTHSM2_CONF=DIR/softhsm2.conf
#         SOFTHSM_MODULE=/path/to/libsofthsm2.so
#       for the caller to put in the environment of whatever loads the module.
#
# Sourced: `softhsm_module`, `softhsm_token` (the same, as functions) and `softhsm_export`, which
# exports KEYPLANE_SOFTHSM (this script's absolute path) and KEYPLANE_SOFTHSM_MODULE for the tests
# a script runs.

softhsm_module() {
  local candidate
  for candidate in /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    if [ -r "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  echo "libsofthsm2.so is missing: apt-get install softhsm2" >&2
  return 1
}

softhsm_token() {
  local dir="$1" label="$2" pin="$3" so_pin="${4:-0987654321}" module
  if [ -z "$dir" ] || [ -z "$label" ] || [ -z "$pin" ]; then
    echo "usage: softhsm.sh token DIR LABEL PIN [SO_PIN]" >&2
    return 2
  fi
  module=$(softhsm_module) || return 1
  mkdir -p "$dir/tokens" || return 1
  dir=$(cd "$dir" && pwd) || return 1
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$dir" > "$dir/softhsm2.conf" || return 1
  SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label "$label" \
    --pin "$pin" --so-pin "$so_pin" >/dev/null || return 1
  echo "SOFTHSM2_CONF=$dir/softhsm2.conf"
  echo "SOFTHSM_MODULE=$module"
}

softhsm_export() {
  KEYPLANE_SOFTHSM="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/softhsm.sh"
  KEYPLANE_SOFTHSM_MODULE=$(softhsm_module) || return 1
  export KEYPLANE_SOFTHSM KEYPLANE_SOFTHSM_MODULE
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u
  case "${1:-}" in
    module) softhsm_module ;;
    token) shift; softhsm_token "$@" ;;
    *)
      echo "usage: softhsm.sh module | token DIR LABEL PIN [SO_PIN]" >&2
      exit 2
      ;;
  esac
fi
