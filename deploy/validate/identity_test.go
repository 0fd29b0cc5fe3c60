package validate

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// People's tokens: every service verifies them against the identity provider configured in
// the clinical-platform ConfigMap, whose keys it fetches over HTTPS.

// The base's placeholders, which every overlay must replace.
const (
	baseIssuer   = "https://idp.invalid/realms/clinical"
	baseIdPBlock = "192.0.2.1/32"
)

// Top-level domains that can never name a real identity provider (RFC 2606, RFC 6761).
var unresolvableTLDs = []string{".invalid", ".test", ".localhost", ".example"}

// checkIssuer returns what is wrong with an issuer URL for a deployment; it also returns
// the TCP port the services reach it on.
func checkIssuer(issuer string) (int32, []string) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if issuer == "" {
		return 0, []string{"CLINICAL_OIDC_ISSUER is not set (the services refuse to start without it)"}
	}
	if issuer == baseIssuer {
		bad("CLINICAL_OIDC_ISSUER is still the base's placeholder %s", baseIssuer)
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return 0, append(errs, fmt.Sprintf("CLINICAL_OIDC_ISSUER %q is not a URL: %v", issuer, err))
	}
	if u.Scheme != "https" {
		bad("CLINICAL_OIDC_ISSUER %q must be https (the services refuse anything else)", issuer)
	}
	host := u.Hostname()
	if host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		bad("CLINICAL_OIDC_ISSUER %q must be a plain https URL with a host", issuer)
	}
	for _, tld := range unresolvableTLDs {
		if strings.HasSuffix(strings.ToLower(host), tld) {
			bad("CLINICAL_OIDC_ISSUER host %q is in %s, which never resolves", host, tld)
		}
	}
	port := int32(443)
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			bad("CLINICAL_OIDC_ISSUER port %q", p)
		}
		port = int32(n)
	}
	return port, errs
}

// allowsIdentityProvider: some NetworkPolicy selecting the pods allows egress to TCP `port`
// towards a bounded destination (not everyone, not the base's placeholder block).
func allowsIdentityProvider(t *testing.T, r *rendered, podLabels map[string]string, port int32) []string {
	t.Helper()
	var errs []string
	allowed := false
	for _, p := range r.policies {
		if !selects(t, &p.Spec.PodSelector, podLabels) {
			continue
		}
		for _, rule := range p.Spec.Egress {
			opensPort := false
			for _, rp := range rule.Ports {
				if rp.Port != nil && rp.Port.IntVal == port && (rp.Protocol == nil || *rp.Protocol == "TCP") {
					opensPort = true
				}
			}
			if !opensPort {
				continue
			}
			if bounded, why := boundedPeers(rule.To); !bounded {
				errs = append(errs, fmt.Sprintf("NetworkPolicy %s: egress on %d %s", p.Name, port, why))
				continue
			}
			allowed = true
		}
	}
	if !allowed {
		errs = append(errs, fmt.Sprintf("no NetworkPolicy allows egress to the identity provider on TCP %d", port))
	}
	return errs
}

func boundedPeers(peers []networkingv1.NetworkPolicyPeer) (bool, string) {
	if len(peers) == 0 {
		return false, "goes to every destination"
	}
	for _, peer := range peers {
		if peer.IPBlock == nil {
			continue
		}
		if peer.IPBlock.CIDR == baseIdPBlock {
			return false, "still goes to the base's placeholder " + baseIdPBlock
		}
		_, block, err := net.ParseCIDR(peer.IPBlock.CIDR)
		if err != nil {
			return false, fmt.Sprintf("has a bad CIDR %q", peer.IPBlock.CIDR)
		}
		if ones, _ := block.Mask.Size(); ones == 0 {
			return false, fmt.Sprintf("goes to the whole internet (%s)", peer.IPBlock.CIDR)
		}
	}
	return true, ""
}

func TestOverlaysConfigureTheIdentityProvider(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			r := load(t, overlay)
			var platform map[string]string
			for name, cm := range r.configMaps {
				if strings.HasPrefix(name, "clinical-platform-") {
					platform = cm.Data
				}
			}
			port, errs := checkIssuer(platform["CLINICAL_OIDC_ISSUER"])
			for _, e := range errs {
				t.Error(e)
			}
			if platform["CLINICAL_OIDC_AUDIENCE"] == "" {
				t.Error("CLINICAL_OIDC_AUDIENCE is empty")
			}
			for _, claim := range []string{"CLINICAL_OIDC_USER_CLAIM", "CLINICAL_OIDC_ROLES_CLAIM", "CLINICAL_OIDC_TENANT_CLAIM"} {
				if platform[claim] == "" {
					t.Errorf("%s is empty", claim)
				}
			}
			if jwks := platform["CLINICAL_OIDC_JWKS_URL"]; jwks != "" && !strings.HasPrefix(jwks, "https://") {
				t.Errorf("CLINICAL_OIDC_JWKS_URL %q must be https", jwks)
			}
			if port == 0 {
				return
			}
			for _, w := range r.workloads() {
				for _, e := range allowsIdentityProvider(t, r, w.template.Labels, port) {
					t.Errorf("%s: %s", w.name, e)
				}
				if !envFromPlatform(w) {
					t.Errorf("%s does not take its environment from clinical-platform", w.name)
				}
			}
		})
	}
}

func envFromPlatform(w workload) bool {
	for _, from := range w.template.Spec.Containers[0].EnvFrom {
		if from.ConfigMapRef != nil && strings.HasPrefix(from.ConfigMapRef.Name, "clinical-platform") {
			return true
		}
	}
	return false
}

// The identity-provider rules can fail.
func TestIdentityProviderRulesRejectMistakes(t *testing.T) {
	for issuer, wantPort := range map[string]int32{
		"https://idp.hospital.org/realms/clinical":                                    443,
		"https://keycloak.keycloak.svc:8443/realms/clinical":                          8443,
		"https://login.microsoftonline.com/0a1b2c3d-0000-4000-8000-000000000000/v2.0": 443,
	} {
		if port, errs := checkIssuer(issuer); len(errs) != 0 || port != wantPort {
			t.Errorf("%s: port %d, errors %v; want %d and none", issuer, port, errs, wantPort)
		}
	}
	for _, issuer := range []string{"", baseIssuer, "http://idp.hospital.org/realms/clinical",
		"https://idp.test/realms/clinical", "https://user@idp.hospital.org/", "idp.hospital.org"} {
		if _, errs := checkIssuer(issuer); len(errs) == 0 {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
	for _, cidr := range []string{baseIdPBlock, "0.0.0.0/0", "::/0", "nonsense"} {
		if ok, _ := boundedPeers([]networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}}); ok {
			t.Errorf("egress to %s accepted as the identity provider", cidr)
		}
	}
	if ok, _ := boundedPeers(nil); ok {
		t.Errorf("egress to everyone accepted as the identity provider")
	}
	if ok, _ := boundedPeers([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"clinical.platform/identity-provider": "true"}}}}); !ok {
		t.Errorf("a namespace selector was refused")
	}
}
