#!/usr/bin/env bash
# collect-runtime.sh OUT BINARY...
# Copies each binary (debug info stripped) to OUT/usr/local/bin and every shared library it
# loads (the ldd closure) to OUT/<the library's real directory>/<soname>, skipping glibc,
# which the runtime base image provides. Used by every service Dockerfile's build stage;
# tests/deploy/runtime_closure_test.sh runs it on this machine's binaries.
set -euo pipefail

out=${1:?usage: collect-runtime.sh OUT BINARY...}
shift
(($# > 0)) || { echo "collect-runtime.sh: no binary given" >&2; exit 2; }

mkdir -p "${out}/usr/local/bin"
for bin in "$@"; do
  [[ -x ${bin} ]] || { echo "collect-runtime.sh: not an executable: ${bin}" >&2; exit 1; }
  dest="${out}/usr/local/bin/$(basename "${bin}")"
  cp "${bin}" "${dest}"
  strip --strip-debug "${dest}"
  # "not found" in ldd output means the binary could never start: fail the build.
  if ldd "${bin}" | grep -q "not found"; then
    ldd "${bin}" >&2
    echo "collect-runtime.sh: unresolved libraries for ${bin}" >&2
    exit 1
  fi
done

count=0
while read -r lib; do
  name=$(basename "${lib}")
  case "${name}" in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*.so.* | \
      libresolv.so.* | libutil.so.*) continue ;;
  esac
  dir=$(realpath "$(dirname "${lib}")")
  mkdir -p "${out}${dir}"
  cp -L "${lib}" "${out}${dir}/${name}"
  count=$((count + 1))
done < <(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
echo "collect-runtime.sh: $# binaries, ${count} libraries into ${out}" >&2
