package validate

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// cert-manager's resources are not k8s.io/api types. Like the Strimzi examples, they are
// decoded strictly into structs that mirror the subset of the cert-manager.io/v1 schema the
// manifests use: a field outside it (a typo, a misplaced key) fails the test. They implement
// runtime.Object, so they travel with the core objects through decodeAll and load.

const certManagerAPIVersion = "cert-manager.io/v1"

type certManagerIssuerRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name"`
}

type certManagerCertificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		IsCA        bool     `json:"isCA,omitempty"`
		CommonName  string   `json:"commonName,omitempty"`
		URIs        []string `json:"uris,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		IPAddresses []string `json:"ipAddresses,omitempty"`
		Subject     *struct {
			Organizations []string `json:"organizations,omitempty"`
		} `json:"subject,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef certManagerIssuerRef `json:"issuerRef"`
	} `json:"spec"`
}

// An Issuer or ClusterIssuer of the two kinds the suite refers to: self-signed and CA.
type certManagerIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

func (c *certManagerCertificate) DeepCopyObject() runtime.Object {
	return deepCopyJSON(c, &certManagerCertificate{})
}
func (i *certManagerIssuer) DeepCopyObject() runtime.Object {
	return deepCopyJSON(i, &certManagerIssuer{})
}

func deepCopyJSON[T runtime.Object](from T, to T) runtime.Object {
	data, err := json.Marshal(from)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(data, to); err != nil {
		panic(err)
	}
	return to
}

// isCertManager tells whether a YAML document is a cert-manager resource.
func isCertManager(doc []byte) (bool, metav1.TypeMeta, error) {
	var head metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return false, head, err
	}
	return strings.HasPrefix(head.APIVersion, "cert-manager.io/"), head, nil
}

// decodeCertManager decodes one cert-manager document strictly.
func decodeCertManager(doc []byte, head metav1.TypeMeta) (runtime.Object, error) {
	if head.APIVersion != certManagerAPIVersion {
		return nil, fmt.Errorf("apiVersion %s, want %s", head.APIVersion, certManagerAPIVersion)
	}
	var target runtime.Object
	switch head.Kind {
	case "Certificate":
		target = &certManagerCertificate{}
	case "Issuer", "ClusterIssuer":
		target = &certManagerIssuer{}
	default:
		return nil, fmt.Errorf("unexpected cert-manager kind %q", head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, target); err != nil {
		return nil, err
	}
	return target, nil
}
