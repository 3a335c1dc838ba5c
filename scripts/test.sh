#!/usr/bin/env bash
# The project's test command (README): sets up what the tests need on a fresh Debian
# machine, then runs the format check, clippy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

have haproxy || need_packages+=(haproxy)
have nginx || need_packages+=(nginx-light)
{ have initdb || [ -n "$(pg_bin_dir)" ]; } || need_packages+=(postgresql)
have pg_dump || need_packages+=(postgresql-client)
have tmux || need_packages+=(tmux)
have ssh || need_packages+=(openssh-client)
have sshd || need_packages+=(openssh-server)
# The ansible executor's tests run the real Ansible (ansible-core alone: no collections).
have ansible-playbook || need_packages+=(ansible-core)

if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing ${need_packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
  else
    echo "scripts/test.sh: the tests need these Debian packages: ${need_packages[*]}" >&2
    echo "install them with: sudo apt-get install ${need_packages[*]}" >&2
    exit 2
  fi
fi

# PostgreSQL's server binaries are not on PATH in Debian's layout.
if ! have initdb; then
  PATH="$PATH:$(pg_bin_dir)"
fi
export PATH="$PATH:/usr/sbin"

# A clean build gains nothing from incremental state; it only costs disk.
export CARGO_INCREMENTAL=0

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The layering as features: the core builds without the console and the lab, and with each.
cargo check --no-default-features --locked
cargo check --no-default-features --features console --locked
cargo check --no-default-features --features lab --locked
cargo test --all-targets --locked
