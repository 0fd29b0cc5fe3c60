#!/usr/bin/env python3
"""Writes the local identity provider's realm (Keycloak realm import JSON) to stdout.

The realm `clinical` is what a health system's identity provider would hold for this
platform: the platform's roles as realm roles; per person a `tenant` attribute and a
`clinical_user_id` attribute (the staff id the platform records as the actor, like an
employee number) mapped into the access token as claims of the same names; an audience
mapper so tokens are issued for the API (`aud` = clinical-api); and people for every role
in two tenants. The services read the claims named in platform.env
(CLINICAL_OIDC_USER_CLAIM=clinical_user_id, CLINICAL_OIDC_TENANT_CLAIM=tenant,
CLINICAL_OIDC_ROLES_CLAIM=realm_access.roles). It exists for the local suite and
the tests only; production uses the health system's own provider (docs/security.md).

  realm.py SECRETS_DIR [SIGNING_KEY_PEM SIGNING_CERT_PEM] > clinical-realm.json

SECRETS_DIR holds demo-users.password and keycloak-provisioner.secret. The signing key is
a test key (RS256) that the realm publishes in its JWKS next to its own generated keys:
tests sign tokens with it to present expired, not-yet-valid or wrong-audience tokens
whose signature is nevertheless valid. Without it (the docker compose suite, which runs no
such tests) the realm signs with its generated keys only, so no key outside Keycloak can
make a token it accepts. Tokens the realm issues itself are signed with
its generated RS256 key (clients `clinical-demo`, `clinical-cli`) or its ES256 key
(`clinical-demo-es256`).
"""
import json
import pathlib
import sys

ROLES = ["case_manager", "supervisor", "intake_coordinator", "scheduler", "auditor", "privacy_officer",
         "administrator"]
# Usernames are unique in a realm, so each tenant has its own people.
PEOPLE = {
    "demo-tenant": [
        ("intake-1", "intake_coordinator"), ("sched-demo", "scheduler"), ("cm-demo-0", "case_manager"),
        ("cm-demo-1", "case_manager"), ("sup-1", "supervisor"), ("sup-demo", "supervisor"),
        ("aud-demo", "auditor"), ("privacy-demo", "privacy_officer"), ("admin-demo", "administrator"),
    ],
    "other-tenant": [
        ("cm-other-0", "case_manager"), ("sup-other", "supervisor"), ("aud-other", "auditor"),
        ("privacy-other", "privacy_officer"), ("admin-other", "administrator"),
    ],
}


def pem_body(path):
    return "".join(l for l in pathlib.Path(path).read_text().splitlines() if not l.startswith("-----"))


def attribute_mapper(attribute):
    return {"name": attribute, "protocol": "openid-connect", "protocolMapper": "oidc-usermodel-attribute-mapper",
            "config": {"user.attribute": attribute, "claim.name": attribute, "jsonType.label": "String",
                       "access.token.claim": "true", "id.token.claim": "false",
                       "userinfo.token.claim": "false", "introspection.token.claim": "true"}}


def token_mappers():
    return [
        {"name": "audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
         "config": {"included.custom.audience": "clinical-api", "access.token.claim": "true",
                    "id.token.claim": "false", "introspection.token.claim": "true"}},
        attribute_mapper("tenant"),
        attribute_mapper("clinical_user_id"),
    ]


def public_client(client_id, **attributes):
    return {"clientId": client_id, "enabled": True, "publicClient": True,
            "directAccessGrantsEnabled": True, "standardFlowEnabled": False,
            "attributes": {"oauth2.device.authorization.grant.enabled": "true", **attributes},
            "protocolMappers": token_mappers()}


def main():
    if len(sys.argv) not in (2, 4):
        sys.exit("usage: realm.py SECRETS_DIR [SIGNING_KEY_PEM SIGNING_CERT_PEM]")
    secrets = sys.argv[1]
    test_key = sys.argv[2:4]
    password = pathlib.Path(secrets, "demo-users.password").read_text().strip()
    provisioner = pathlib.Path(secrets, "keycloak-provisioner.secret").read_text().strip()
    # Keycloak's declarative user profile refuses attributes it does not know; `tenant`
    # is declared, editable by administrators only (a user must not move tenants).
    profile = {
        "unmanagedAttributePolicy": "ADMIN_EDIT",
        "attributes": [
            {"name": "username", "displayName": "${username}",
             "validations": {"length": {"min": 1, "max": 128}, "username-prohibited-characters": {}},
             "permissions": {"view": ["admin", "user"], "edit": ["admin"]}},
            {"name": "email", "displayName": "${email}", "validations": {"email": {}},
             "permissions": {"view": ["admin", "user"], "edit": ["admin"]}},
            {"name": "firstName", "permissions": {"view": ["admin", "user"], "edit": ["admin"]}},
            {"name": "lastName", "permissions": {"view": ["admin", "user"], "edit": ["admin"]}},
            {"name": "clinical_user_id", "displayName": "Staff id",
             "validations": {"length": {"min": 1, "max": 128},
                             "pattern": {"pattern": "^[A-Za-z0-9@:+_-][A-Za-z0-9.@:+_-]*$",
                                         "error-message": "invalid staff id"}},
             "permissions": {"view": ["admin", "user"], "edit": ["admin"]}},
            {"name": "tenant", "displayName": "Tenant",
             "validations": {"length": {"min": 1, "max": 64},
                             "pattern": {"pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                         "error-message": "invalid tenant"}},
             "permissions": {"view": ["admin", "user"], "edit": ["admin"]}},
        ],
    }
    users = []
    for tenant, people in PEOPLE.items():
        for username, role in people:
            users.append({"username": username, "enabled": True, "emailVerified": True,
                          "email": f"{username}@{tenant}.example.org", "firstName": "Demo",
                          "lastName": username,
                          "attributes": {"tenant": [tenant], "clinical_user_id": [username]},
                          "credentials": [{"type": "password", "value": password, "temporary": False}],
                          "realmRoles": [role]})
    users.append({"username": "service-account-clinical-provisioner", "enabled": True,
                  "serviceAccountClientId": "clinical-provisioner",
                  "clientRoles": {"realm-management": ["manage-users", "view-users", "query-users"]}})
    key_providers = [
        {"name": "rs256", "providerId": "rsa-generated",
         "config": {"priority": ["100"], "keySize": ["2048"], "active": ["true"], "enabled": ["true"]}},
        {"name": "es256", "providerId": "ecdsa-generated",
         "config": {"priority": ["90"], "ecdsaEllipticCurveKey": ["P-256"], "active": ["true"],
                    "enabled": ["true"]}},
    ]
    if test_key:
        key, cert = test_key
        key_providers.append(
            {"name": "test-signing", "providerId": "rsa",
             "config": {"priority": ["1"], "privateKey": [pem_body(key)], "certificate": [pem_body(cert)],
                        "active": ["true"], "enabled": ["true"], "algorithm": ["RS256"]}})
    realm = {
        "realm": "clinical", "enabled": True, "sslRequired": "all",
        # Short-lived access tokens; the tests and the demo fetch new ones as needed.
        "accessTokenLifespan": 900,
        "bruteForceProtected": True,
        "roles": {"realm": [{"name": r, "description": f"clinical platform role {r}"} for r in ROLES]},
        "users": users,
        "components": {
            "org.keycloak.keys.KeyProvider": key_providers,
            "org.keycloak.userprofile.UserProfileProvider": [
                {"providerId": "declarative-user-profile", "subComponents": {},
                 "config": {"kc.user.profile.config": [json.dumps(profile)]}},
            ],
        },
        "clients": [
            # The API itself: the audience of every token the services accept.
            {"clientId": "clinical-api", "enabled": True, "bearerOnly": True, "publicClient": False},
            public_client("clinical-demo"),
            public_client("clinical-cli"),
            public_client("clinical-demo-es256", **{"access.token.signed.response.alg": "ES256"}),
            # Creates test identities through the admin API (manage-users only).
            {"clientId": "clinical-provisioner", "enabled": True, "publicClient": False,
             "secret": provisioner, "serviceAccountsEnabled": True, "standardFlowEnabled": False,
             "directAccessGrantsEnabled": False},
        ],
    }
    json.dump(realm, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
