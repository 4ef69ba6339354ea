#!/usr/bin/env bash
# ONNX Runtime C API headers (API >= 21) for building libfgsa_ort_ops.so on Debian 12 hosts.
#
# Debian 13 (trixie) ships them as libonnxruntime-dev (1.21); Debian 12 has no such package. This script
# downloads that one .deb with a private apt configuration derived from the machine's own Debian sources
# (suite bookworm -> trixie, same mirror, same keyring) and unpacks it under the build tree. It touches no
# system state: private sources list, private lists/cache directories, no install.
#
#   kernels/ort/fetch_headers.sh <dest>     -> <dest>/usr/include/onnxruntime/onnxruntime_c_api.h
#
# Exit 0 with the headers in place (or already there); exit 1 with one line saying why when they cannot be had.
set -euo pipefail

dest=${1:?usage: fetch_headers.sh <dest dir>}
mkdir -p "$dest" && dest=$(cd "$dest" && pwd)  # apt resolves relative Dir:: paths against /
header="$dest/usr/include/onnxruntime/onnxruntime_c_api.h"
[[ -f "$header" ]] && exit 0

say() { echo "kernels/ort: $*" >&2; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { say "apt-get/dpkg-deb missing: not a Debian host, headers not fetched (see kernels/README.md)"; exit 1; }

# The machine's Debian main-archive source: the first 'bookworm' entry (not -security/-updates) of the
# deb822 .sources files or of sources.list. Prints "URI KEYRING".
find_source() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk '
            function flush() { if (uri != "" && suite_ok) { print uri, (key == "" ? "-" : key); found = 1; exit } uri = ""; key = ""; suite_ok = 0 }
            /^[[:space:]]*$/ { flush(); next }
            /^URIs:/      { uri = $2 }
            /^Signed-By:/ { key = $2 }
            /^Suites:/    { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite_ok = 1 }
            END { if (!found) flush() }
        ' "$f" | head -n1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        awk '
            $1 == "deb" {
                key = "-"; i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { if ($i ~ /signed-by=/) { sub(/.*signed-by=/, "", $i); key = $i } i++ }
                                  if ($i ~ /signed-by=/) { sub(/.*signed-by=/, "", $i); sub(/\]$/, "", $i); key = $i } i++ }
                if ($(i + 1) == "bookworm") { print $i, key; exit }
            }' "$f"
    done
}

read -r uri key < <(find_source | head -n1) || true
if [[ -z "${uri:-}" ]]; then
    say "no Debian 'bookworm' source found in /etc/apt/sources.list{,.d}: cannot derive the trixie source; pass -DONNXRUNTIME_INCLUDE_DIR instead"
    exit 1
fi
if [[ "$key" == "-" ]]; then key=/usr/share/keyrings/debian-archive-keyring.gpg; fi

work="$dest/apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=$key] $uri trixie main" >"$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
      -o APT::Sandbox::User=root -o Debug::NoLocking=1 -o Acquire::Languages=none -qq)
say "fetching libonnxruntime-dev from the machine's Debian mirror, suite trixie (private apt state in $work)"
if ! apt-get "${opts[@]}" update >"$work/update.log" 2>&1; then
    say "apt-get update of the trixie suite failed (see $work/update.log); pass -DONNXRUNTIME_INCLUDE_DIR instead"
    exit 1
fi
if ! (cd "$work/debs" && apt-get "${opts[@]}" download libonnxruntime-dev) >"$work/download.log" 2>&1; then
    say "apt-get download libonnxruntime-dev failed (see $work/download.log); pass -DONNXRUNTIME_INCLUDE_DIR instead"
    exit 1
fi
dpkg-deb -x "$work"/debs/libonnxruntime-dev_*.deb "$dest"
[[ -f "$header" ]] || { say "libonnxruntime-dev unpacked but $header is missing"; exit 1; }
say "headers in $(dirname "$header")"
