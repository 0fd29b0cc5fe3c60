// Package validate checks the Kubernetes manifests under deploy/k8s: every base file and
// the kustomize output of every overlay is decoded strictly (unknown or duplicate fields
// are errors) into the official k8s.io/api types, and the decoded objects are checked
// against the rules the suite must keep (non-root, read-only root file system, health
// probes that run clinical_health_check over mutual TLS, each service's own cert-manager
// certificate mounted with a SPIFFE URI of its namespace, resources, one
// PodDisruptionBudget, NetworkPolicy and Service per workload, ...). cert-manager resources
// are decoded strictly into mirrored structs (certmanager_types_test.go).
//
// Run: cd deploy/validate && go test ./...   (ctest: deploy_k8s_manifests_test)
package validate
