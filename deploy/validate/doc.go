// Package validate checks the Kubernetes manifests under deploy/k8s: every base file and
// the kustomize output of every overlay is decoded strictly (unknown or duplicate fields
// are errors) into the official k8s.io/api types, and the decoded objects are checked
// against the rules the suite must keep (non-root, read-only root file system, gRPC
// probes, resources, one PodDisruptionBudget, NetworkPolicy and Service per workload, ...).
//
// Run: cd deploy/validate && go test ./...   (ctest: deploy_k8s_manifests_test)
package validate
