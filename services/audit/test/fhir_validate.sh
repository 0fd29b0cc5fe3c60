#!/usr/bin/env bash
# Validates exported AuditEvents against FHIR R4 (4.0.1) with a real validator from PyPI:
# fhir.resources 6.4.0, the last release whose models are R4 4.0.1 (7.x moved to R5/R4B),
# on pydantic 1.10 (its models use the pydantic v1 API). Installed once into a venv under
# the tool cache, like the deploy checks' hadolint; never skipped.
#
#   fhir_validate.sh EXPORT.ndjson BUNDLE.json
# Prints "valid: N AuditEvent (ndjson), 1 Bundle of M" and exits 0, or names the first
# invalid resource and exits 1.
set -euo pipefail

readonly FHIR_RESOURCES_VERSION=6.4.0
readonly PYDANTIC_VERSION=1.10.27
readonly TOOL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/clinical-platform"
readonly VENV="${TOOL_CACHE}/fhir-resources-${FHIR_RESOURCES_VERSION}"

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
[[ $# -eq 2 ]] || fail "usage: $0 EXPORT.ndjson BUNDLE.json"

if ! "${VENV}/bin/python" -c "import fhir.resources" 2>/dev/null; then
  printf 'installing fhir.resources==%s into %s\n' "${FHIR_RESOURCES_VERSION}" "${VENV}" >&2
  mkdir -p "${TOOL_CACHE}"
  python3 -m venv "${VENV}" || fail "cannot create a Python venv (python3-venv)"
  "${VENV}/bin/pip" install -q "fhir.resources==${FHIR_RESOURCES_VERSION}" \
    "pydantic[email]==${PYDANTIC_VERSION}" || fail "pip install fhir.resources failed"
fi

"${VENV}/bin/python" - "$1" "$2" <<'PY'
import datetime
import json
import sys

import fhir.resources
from fhir.resources.auditevent import AuditEvent
from fhir.resources.bundle import Bundle

if fhir.resources.__fhir_version__ != "4.0.1":
    sys.exit(f"FAIL: fhir.resources models FHIR {fhir.resources.__fhir_version__}, not R4 4.0.1")



def instant(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def same(sent, kept):
    """Whether the model kept everything that was sent (times may be re-formatted)."""
    if isinstance(sent, dict):
        return isinstance(kept, dict) and sent.keys() == kept.keys() and all(
            same(sent[key], kept[key]) for key in sent)
    if isinstance(sent, list):
        return isinstance(kept, list) and len(sent) == len(kept) and all(
            same(a, b) for a, b in zip(sent, kept))
    if sent == kept:
        return True
    return isinstance(sent, str) and instant(sent) is not None and instant(sent) == instant(kept)


ndjson_path, bundle_path = sys.argv[1], sys.argv[2]
count = 0
with open(ndjson_path, encoding="utf-8") as lines:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = AuditEvent.parse_raw(line)
        except Exception as error:  # the validator's message names the field and rule
            sys.exit(f"FAIL: {ndjson_path} line {number}: {error}")
        # Round trip: what the model keeps must be what we sent (nothing silently dropped).
        if not same(json.loads(line), json.loads(event.json())):
            sys.exit(f"FAIL: {ndjson_path} line {number}: content changed by the R4 model")
        count += 1
try:
    bundle = Bundle.parse_file(bundle_path)
except Exception as error:
    sys.exit(f"FAIL: {bundle_path}: {error}")
entries = bundle.entry or []
for entry in entries:
    if entry.resource.resource_type != "AuditEvent":
        sys.exit(f"FAIL: {bundle_path}: entry of type {entry.resource.resource_type}")
if count == 0:
    sys.exit("FAIL: no AuditEvent to validate")
print(f"valid: {count} AuditEvent (ndjson), 1 Bundle of {len(entries)}")
PY
