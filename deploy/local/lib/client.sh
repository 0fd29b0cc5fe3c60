# shellcheck shell=bash
# How a person reaches the local suite from the shell, the way any client must: log in at
# the identity provider (Keycloak) for an access token, then call with grpcurl over mutual
# TLS presenting the operator console's certificate and the token. Sourced by the demo
# scripts and suite.sh; needs CLINICAL_PLATFORM_DIR (the platform's state folder).
#
#   clinical_login USER [CLIENT]   prints an access token for USER (a person of the local
#                                  realm, e.g. cm-demo-0; password from the platform's
#                                  secrets); CLIENT defaults to clinical-demo
#   clinical_grpcurl ARGS...       grpcurl with the operator certificate and the platform CA
#   clinical_call USER ADDRESS METHOD [JSON]   clinical_grpcurl as USER (a token per user
#                                  is kept for 10 minutes in the platform's secrets folder,
#                                  so subshells and later runs need not log in again)

clinical_platform_value() {  # clinical_platform_value KEY: a value from platform.env
  sed -n "s/^export $1=//p" "${CLINICAL_PLATFORM_DIR:?}/platform.env"
}

clinical_login() {
  local user="$1" client="${2:-clinical-demo}" issuer ca password answer
  issuer="$(clinical_platform_value CLINICAL_OIDC_ISSUER)"
  ca="$(clinical_platform_value CLINICAL_PKI_DIR)/ca.crt"
  password="$(cat "${CLINICAL_PLATFORM_DIR}/secrets/demo-users.password")"
  # The password goes to curl on stdin, never on a command line others can list.
  answer="$(printf 'grant_type=password&client_id=%s&username=%s&password=%s' "${client}" "${user}" "${password}" |
    curl -fsS --cacert "${ca}" --data-binary @- "${issuer}/protocol/openid-connect/token")" ||
    { echo "login of ${user} at ${issuer} failed" >&2; return 1; }
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' <<<"${answer}"
}

clinical_grpcurl() {
  local pki
  pki="$(clinical_platform_value CLINICAL_PKI_DIR)"
  "${GRPCURL:-grpcurl}" -cacert "${pki}/ca.crt" -cert "${pki}/operator.crt" -key "${pki}/operator.key" "$@"
}

clinical_token() {  # clinical_token USER: a cached token of USER (tokens live 15 minutes)
  local user="$1" dir="${CLINICAL_PLATFORM_DIR}/secrets/tokens"
  local file="${dir}/${user}"
  if [[ ! -s "${file}" ]] || (($(date +%s) - $(stat -c %Y "${file}") > 600)); then
    (umask 077 && mkdir -p "${dir}" && clinical_login "${user}" >"${file}.new" && mv "${file}.new" "${file}") ||
      return 1
  fi
  cat "${file}"
}

clinical_call() {
  local user="$1" address="$2" method="$3" body="${4:-{\}}" token
  token="$(clinical_token "${user}")" || return 1
  clinical_grpcurl -H "authorization: Bearer ${token}" -d "${body}" "${address}" "${method}"
}
