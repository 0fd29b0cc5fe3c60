package validate

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mutual TLS on every gRPC hop: each service runs with its own cert-manager certificate,
// whose SPIFFE URI names the namespace the service runs in.

const (
	trustDomain = "clinical.local"
	tlsDir      = "/etc/clinical/tls"
	// The Issuer the platform team provides in the suite's namespace (the dev overlay ships
	// an example chain).
	issuerName = "clinical-ca"
)

// The files cert-manager writes into a certificate's Secret, and the variables the
// services (and clinical_health_check) read them from.
var tlsFiles = map[string]string{
	"CLINICAL_TLS_CERT_FILE": tlsDir + "/tls.crt",
	"CLINICAL_TLS_KEY_FILE":  tlsDir + "/tls.key",
	"CLINICAL_TLS_CA_FILE":   tlsDir + "/ca.crt",
}

func tlsSecretName(service string) string { return service + "-tls" }

func spiffeID(namespace, serviceAccount string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", trustDomain, namespace, serviceAccount)
}

// checkTLS: the container reads its certificate, key and CA from its own <service>-tls
// Secret, mounted read-only and not optional (a pod must not start without its identity;
// the service would exit anyway).
func checkTLS(service string, spec corev1.PodSpec, c corev1.Container) []string {
	var errs []string
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	for variable, want := range tlsFiles {
		if env[variable] != want {
			errs = append(errs, fmt.Sprintf("%s must be %s, not %q", variable, want, env[variable]))
		}
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") == tlsDir {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		return append(errs, fmt.Sprintf("nothing is mounted at %s", tlsDir))
	}
	if !mount.ReadOnly || mount.SubPath != "" || mount.SubPathExpr != "" {
		// A subPath mount is never updated: the service would keep its first certificate.
		errs = append(errs, fmt.Sprintf("%s must be mounted read-only as a whole directory (no subPath)", tlsDir))
	}
	var secret *corev1.SecretVolumeSource
	for _, v := range spec.Volumes {
		if v.Name == mount.Name {
			secret = v.Secret
		}
	}
	if secret == nil {
		return append(errs, fmt.Sprintf("%s is not a Secret volume", tlsDir))
	}
	if secret.SecretName != tlsSecretName(service) {
		errs = append(errs, fmt.Sprintf("%s holds Secret %q, want the service's own %q", tlsDir, secret.SecretName, tlsSecretName(service)))
	}
	if secret.Optional != nil && *secret.Optional {
		errs = append(errs, fmt.Sprintf("the TLS Secret %s must not be optional", secret.SecretName))
	}
	if len(secret.Items) > 0 {
		paths := map[string]string{}
		for _, item := range secret.Items {
			paths[item.Path] = item.Key
		}
		for _, file := range tlsFiles {
			name := strings.TrimPrefix(file, tlsDir+"/")
			if paths[name] != name {
				errs = append(errs, fmt.Sprintf("the TLS Secret's items do not map key %s to %s", name, file))
			}
		}
	}
	return errs
}

// checkCertificate returns what is wrong with the Certificate of `service`, running in
// `namespace` as `serviceAccount` behind the Services `serviceNames`.
func checkCertificate(cert *certManagerCertificate, service, namespace, serviceAccount string, serviceNames []string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	spec := cert.Spec
	if cert.Namespace != namespace {
		bad("in namespace %q, want %q (where the service runs)", cert.Namespace, namespace)
	}
	if spec.SecretName != tlsSecretName(service) {
		bad("secretName %q, want %q", spec.SecretName, tlsSecretName(service))
	}
	if spec.IsCA {
		bad("a service certificate must not be a CA")
	}
	want := spiffeID(namespace, serviceAccount)
	if len(spec.URIs) != 1 || spec.URIs[0] != want {
		bad("uris %v, want exactly [%s]: the services derive their peers' namespace from it", spec.URIs, want)
	}
	for _, uri := range spec.URIs {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "spiffe" || u.Host != trustDomain {
			bad("uri %q is not a SPIFFE ID of trust domain %s", uri, trustDomain)
			continue
		}
		// spiffe://<domain>/ns/<namespace>/sa/<account>
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" || parts[1] != namespace {
			bad("uri %q does not name namespace %q", uri, namespace)
		}
	}
	for _, name := range serviceNames {
		for _, dns := range []string{name, name + "." + namespace, name + "." + namespace + ".svc"} {
			if !slices.Contains(spec.DNSNames, dns) {
				bad("dnsNames lack %s", dns)
			}
		}
	}
	for _, dns := range spec.DNSNames {
		if strings.Contains(dns, "set-by-overlay") {
			bad("dnsName %s still holds the base's placeholder", dns)
		}
		if parts := strings.Split(dns, "."); len(parts) > 1 && parts[1] != namespace {
			bad("dnsName %s is in another namespace than %s", dns, namespace)
		}
	}
	// The probes dial 127.0.0.1 inside the pod, and gRPC checks the server's certificate
	// against the dialled address.
	if !slices.Contains(spec.IPAddresses, "127.0.0.1") {
		bad("ipAddresses lack 127.0.0.1 (the probes' clinical_health_check dials it)")
	}
	for _, usage := range []string{"server auth", "client auth", "digital signature"} {
		if !slices.Contains(spec.Usages, usage) {
			bad("usages lack %q (every service is a TLS server and client)", usage)
		}
	}
	key := spec.PrivateKey
	if key == nil || key.Algorithm != "ECDSA" || key.Size != 256 || key.Encoding != "PKCS8" || key.RotationPolicy != "Always" {
		bad("privateKey must be ECDSA 256 in PKCS8 with rotationPolicy Always, got %+v", key)
	}
	if ref := spec.IssuerRef; ref.Name != issuerName || ref.Kind != "Issuer" || (ref.Group != "" && ref.Group != "cert-manager.io") {
		bad("issuerRef %+v, want the Issuer %s", ref, issuerName)
	}
	duration, errD := time.ParseDuration(spec.Duration)
	renew, errR := time.ParseDuration(spec.RenewBefore)
	switch {
	case errD != nil || errR != nil:
		bad("duration %q and renewBefore %q must both be set", spec.Duration, spec.RenewBefore)
	case duration > 90*24*time.Hour:
		bad("duration %v: a workload certificate lives at most 90 days", duration)
	case renew < 24*time.Hour || renew*4 < duration || renew >= duration:
		// Renewal early enough to fix a broken issuer before expiry.
		bad("renewBefore %v must be at least a day and a quarter of the duration %v, and less than it", renew, duration)
	}
	return errs
}

func TestOverlaysGiveEveryServiceItsCertificate(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			r := load(t, overlay)
			namespace := r.namespaces[0].Name
			bySecret := map[string]*certManagerCertificate{}
			for _, cert := range r.certificates {
				if cert.Spec.IsCA {
					continue
				}
				if _, dup := bySecret[cert.Spec.SecretName]; dup {
					t.Errorf("two Certificates write Secret %s", cert.Spec.SecretName)
				}
				bySecret[cert.Spec.SecretName] = cert
			}
			used := map[string]bool{}
			for _, w := range r.workloads() {
				secret := tlsSecretName(w.name)
				cert, ok := bySecret[secret]
				if !ok {
					t.Errorf("%s: no Certificate writes its Secret %s", w.name, secret)
					continue
				}
				used[secret] = true
				var names []string
				for _, s := range r.services {
					if s.Spec.ClusterIP != "None" && selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.template.Labels) {
						names = append(names, s.Name)
					}
				}
				for _, e := range checkCertificate(cert, w.name, namespace, w.template.Spec.ServiceAccountName, names) {
					t.Errorf("Certificate %s: %s", cert.Name, e)
				}
				if w.template.Spec.ServiceAccountName != w.name {
					t.Errorf("%s runs as ServiceAccount %q: its SPIFFE ID must name the service itself",
						w.name, w.template.Spec.ServiceAccountName)
				}
			}
			for secret := range bySecret {
				if !used[secret] {
					t.Errorf("Certificate for Secret %s belongs to no workload", secret)
				}
			}
			// The production overlay uses the platform team's Issuer; a self-signed issuer
			// there would be a CA whose key sits in the namespace.
			for _, issuer := range r.issuers {
				if overlay == "prod" {
					t.Errorf("prod renders the %s %s: production uses the platform team's Issuer %s", issuer.Kind, issuer.Name, issuerName)
				}
			}
			if overlay == "dev" {
				checkDevIssuerChain(t, r)
			}
		})
	}
}

// The dev overlay's example: Issuer clinical-ca is a CA issuer whose Secret is written by
// a CA Certificate from a self-signed issuer.
func checkDevIssuerChain(t *testing.T, r *rendered) {
	t.Helper()
	issuers := map[string]*certManagerIssuer{}
	for _, issuer := range r.issuers {
		issuers[issuer.Kind+"/"+issuer.Name] = issuer
	}
	ca := issuers["Issuer/"+issuerName]
	if ca == nil || ca.Spec.CA == nil {
		t.Fatalf("dev: no CA Issuer %s", issuerName)
	}
	for _, cert := range r.certificates {
		if cert.Spec.SecretName != ca.Spec.CA.SecretName {
			continue
		}
		if !cert.Spec.IsCA {
			t.Errorf("dev: Certificate %s backs the CA Issuer but is not a CA", cert.Name)
		}
		root := issuers[cert.Spec.IssuerRef.Kind+"/"+cert.Spec.IssuerRef.Name]
		if root == nil || root.Spec.SelfSigned == nil {
			t.Errorf("dev: the CA Certificate %s is not issued by a self-signed issuer of the overlay", cert.Name)
		}
		return
	}
	t.Errorf("dev: no Certificate writes the CA Secret %s", ca.Spec.CA.SecretName)
}

// The certificate rules can fail: a compliant certificate is refused once its URI names
// another namespace, its key rotation is off, or it lacks client auth.
func TestCertificateRulesRejectMistakes(t *testing.T) {
	r := load(t, "prod")
	var views *certManagerCertificate
	for _, cert := range r.certificates {
		if cert.Spec.SecretName == tlsSecretName("views") {
			views = cert
		}
	}
	if views == nil {
		t.Fatal("no views Certificate")
	}
	namespace := r.namespaces[0].Name
	if errs := checkCertificate(views, "views", namespace, "views", []string{"views"}); len(errs) != 0 {
		t.Fatalf("the views Certificate should comply: %v", errs)
	}
	mutations := map[string]func(*certManagerCertificate){
		"other namespace": func(c *certManagerCertificate) { c.Spec.URIs = []string{spiffeID("clinical-dev", "views")} },
		"placeholder":     func(c *certManagerCertificate) { c.Spec.URIs = []string{spiffeID("set-by-overlay", "views")} },
		"no uri":          func(c *certManagerCertificate) { c.Spec.URIs = nil },
		"other service":   func(c *certManagerCertificate) { c.Spec.URIs = []string{spiffeID(namespace, "case")} },
		"key kept":        func(c *certManagerCertificate) { c.Spec.PrivateKey.RotationPolicy = "Never" },
		"rsa":             func(c *certManagerCertificate) { c.Spec.PrivateKey.Algorithm = "RSA" },
		"server only":     func(c *certManagerCertificate) { c.Spec.Usages = []string{"digital signature", "server auth"} },
		"cluster issuer":  func(c *certManagerCertificate) { c.Spec.IssuerRef.Kind = "ClusterIssuer" },
		"no loopback":     func(c *certManagerCertificate) { c.Spec.IPAddresses = nil },
		"late renewal":    func(c *certManagerCertificate) { c.Spec.RenewBefore = "1h" },
		"dns elsewhere":   func(c *certManagerCertificate) { c.Spec.DNSNames = append(c.Spec.DNSNames, "views.clinical-dev.svc") },
	}
	for name, mutate := range mutations {
		broken := views.DeepCopyObject().(*certManagerCertificate)
		mutate(broken)
		if errs := checkCertificate(broken, "views", namespace, "views", []string{"views"}); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}
