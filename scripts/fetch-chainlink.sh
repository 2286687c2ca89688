#!/usr/bin/env bash
# Fetch Chainlink's keystone contracts (the real KeystoneForwarder, our compatibility and gas
# baseline) from the npm registry into contracts/lib/ (gitignored). Run by `make setup`.
#
# `npm install @chainlink/contracts` cannot work here: the package depends on a git repository
# (@zksync/contracts) and on a tree of tooling we do not need. So we `npm pack` the pinned
# version (npm's own client, registry only), check the tarball against a pinned sha512 and keep
# just src/v0.8/{keystone,shared}. Its OpenZeppelin imports (@openzeppelin/contracts@4.8.3/...,
# @openzeppelin/contracts@5.0.2/...) resolve to the npm aliases in package.json via foundry.toml.
set -euo pipefail
version="1.5.0"
sha512="d5f189c23be2bea031bd5393a995045c6479e02013b60d2f8dc5e048893809fa1a7769d48521bfa9a5875e32e0d4290d4de3a8b5ea311907293ff1e20391ec50"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/contracts/lib/chainlink-contracts"
stamp="$dest/.version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version $sha512" ]; then
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "==> fetching @chainlink/contracts@$version (npm pack) for the KeystoneForwarder baseline"
(cd "$tmp" && npm pack --silent --loglevel=error "@chainlink/contracts@$version" >/dev/null)
tarball="$tmp/chainlink-contracts-$version.tgz"
actual="$(sha512sum "$tarball" | cut -d' ' -f1)"
if [ "$actual" != "$sha512" ]; then
  echo "@chainlink/contracts@$version: sha512 $actual, expected $sha512" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/src/v0.8/keystone package/src/v0.8/shared
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/package/src" "$dest/src"
echo "$version $sha512" >"$stamp"
