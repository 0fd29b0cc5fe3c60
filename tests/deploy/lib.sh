# Shared helpers of the deploy checks (sourced). The checks never skip: a missing tool that
# cannot be installed is a failure.
set -euo pipefail

readonly REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly TOOL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/clinical-platform"

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*" >&2; }

# apt_install PACKAGE...: installs missing Debian packages (root or passwordless sudo).
apt_install() {
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || fail "need root or sudo to install: $*"
    sudo="sudo -n"
  fi
  note "installing Debian packages: $*"
  ${sudo} apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "$@" \
    >/dev/null || fail "apt-get install $* failed"
}
