#!/usr/bin/env bash
# Supply-chain checks for CI and for a release:
#   cargo deny check licenses bans sources   (offline: Cargo.lock and the crates' own metadata)
#   cargo deny check advisories, cargo audit (the RustSec advisory database, fetched from GitHub)
# Installs cargo-deny, cargo-audit and cargo-cyclonedx (for `cargo xtask image`'s SBOM) into
# ~/.cargo/bin when missing; cache that directory between CI runs, a cold install compiles for minutes.
#
# The advisory database is fetched from GitHub. Where that host is unreachable the advisory checks
# are reported as NOT RUN and skipped, unless PORTALCTL_REQUIRE_ADVISORIES=1, which makes that a
# failure (set it in pipelines that can reach GitHub). Exceptions, each with its reason: deny.toml
# and .cargo/audit.toml; policy: docs/release.md.
set -euo pipefail
cd "$(dirname "$0")/.."

install_if_missing() { # crate version cargo-subcommand
  if ! cargo "$3" --version 2>/dev/null | grep -qF " $2"; then
    local started=$SECONDS
    echo "supply-chain: installing $1 $2" >&2
    cargo install --locked --quiet "$1" --version "$2"
    echo "supply-chain: installed $1 in $((SECONDS - started)) s" >&2
  fi
}
install_if_missing cargo-deny "${CARGO_DENY_VERSION:-0.20.2}" deny
install_if_missing cargo-audit "${CARGO_AUDIT_VERSION:-0.22.2}" audit
install_if_missing cargo-cyclonedx "${CARGO_CYCLONEDX_VERSION:-0.5.9}" cyclonedx

started=$SECONDS
cargo deny --locked check licenses bans sources
echo "supply-chain: licenses, bans, sources ok ($((SECONDS - started)) s)" >&2

if cargo deny fetch db >/dev/null 2>&1; then
  started=$SECONDS
  cargo deny --locked --offline check advisories
  cargo audit
  echo "supply-chain: advisories ok ($((SECONDS - started)) s)" >&2
elif [ "${PORTALCTL_REQUIRE_ADVISORIES:-0}" = 1 ]; then
  echo "supply-chain: the RustSec advisory database cannot be fetched (PORTALCTL_REQUIRE_ADVISORIES=1)" >&2
  exit 1
else
  echo "supply-chain: advisories NOT RUN: the RustSec advisory database cannot be fetched from this machine" >&2
fi
