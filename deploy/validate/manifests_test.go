package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func k8sDir(t *testing.T) string { return filepath.Join(repoRoot(t), "deploy", "k8s") }

var overlays = []string{"dev", "prod"}

// The services, their gRPC ports, and whether they own partitions (StatefulSet).
var services = map[string]struct {
	port   int32
	writer bool
}{
	"case":         {50051, true},
	"scheduling":   {50052, true},
	"audit":        {50053, true},
	"notification": {50054, true},
	"views":        {50055, false},
}

const metricsPort = 9464

// strictDecoder decodes YAML into the registered k8s.io/api types and fails on unknown
// fields, duplicate fields and unregistered kinds.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}

// splitYAML returns the non-empty documents of a multi-document YAML stream.
func splitYAML(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufioReader(data))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func decodeAll(t *testing.T, decoder runtime.Decoder, source string, data []byte) ([]runtime.Object, error) {
	t.Helper()
	docs, err := splitYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var objects []runtime.Object
	for i, doc := range docs {
		certManager, head, err := isCertManager(doc)
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %w", source, i, err)
		}
		if certManager {
			obj, err := decodeCertManager(doc, head)
			if err != nil {
				return nil, fmt.Errorf("%s document %d (%s): %w", source, i, head.Kind, err)
			}
			objects = append(objects, obj)
			continue
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %w", source, i, err)
		}
		if gvk.Kind == "" || gvk.Version == "" {
			return nil, fmt.Errorf("%s document %d: no apiVersion/kind", source, i)
		}
		objects = append(objects, obj)
	}
	return objects, nil
}

// render runs kustomize (the library kubectl and kustomize use) on a directory.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	kustomizer := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := kustomizer.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return out
}

func baseFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir(t), "base", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var manifests []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			manifests = append(manifests, f)
		}
	}
	sort.Strings(manifests)
	if len(manifests) < 6 {
		t.Fatalf("expected the five service files and network-policies.yaml, found %v", manifests)
	}
	return manifests
}

// --- strict decoding -------------------------------------------------------------------

func TestBaseFilesDecodeStrictly(t *testing.T) {
	decoder := strictDecoder(t)
	for _, file := range baseFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		objects, err := decodeAll(t, decoder, file, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(objects) == 0 {
			t.Errorf("%s: no objects", file)
		}
	}
}

func TestOverlaysRenderAndDecodeStrictly(t *testing.T) {
	decoder := strictDecoder(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			out := render(t, filepath.Join(k8sDir(t), "overlays", overlay))
			objects, err := decodeAll(t, decoder, "overlays/"+overlay, out)
			if err != nil {
				t.Fatal(err)
			}
			// 5 workloads + their Service, ServiceAccount, PDB, NetworkPolicy, Certificate;
			// 4 headless Services; 1 HPA; 3 shared NetworkPolicies (default deny, DNS,
			// identity provider); 3 ConfigMaps; 1 Namespace; dev also its example CA chain
			// (2 Issuers, 1 CA Certificate).
			want := 5*6 + 4 + 1 + 3 + 3 + 1
			if overlay == "dev" {
				want += 3
			}
			if len(objects) != want {
				t.Errorf("%d objects, want %d", len(objects), want)
			}
		})
	}
}

// Every kustomization.yaml decodes strictly into kustomize's own Kustomization type.
func TestKustomizationFilesDecodeStrictly(t *testing.T) {
	files := []string{
		filepath.Join(k8sDir(t), "base", "kustomization.yaml"),
		filepath.Join(k8sDir(t), "transformers", "workload-identity", "kustomization.yaml"),
	}
	for _, overlay := range overlays {
		files = append(files, filepath.Join(k8sDir(t), "overlays", overlay, "kustomization.yaml"))
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var k kusttypes.Kustomization
		if err := yaml.UnmarshalStrict(data, &k); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		if k.Kind != "Kustomization" {
			t.Errorf("%s: kind %q", file, k.Kind)
		}
	}
}

// The transformer configuration the overlays share decodes strictly into kustomize's own
// replacement type.
func TestTransformerConfigDecodesStrictly(t *testing.T) {
	file := filepath.Join(k8sDir(t), "transformers", "workload-identity", "replacements.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Replacements      []kusttypes.ReplacementField `json:"replacements"`
	}
	if err := yaml.UnmarshalStrict(data, &config); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if config.APIVersion != "builtin" || config.Kind != "ReplacementTransformer" || len(config.Replacements) == 0 {
		t.Errorf("%s: want a builtin ReplacementTransformer with replacements", file)
	}
}

// The checks above can fail: a misspelt field, a duplicate field and an unknown kind are
// each rejected by the same decoder.
func TestStrictDecoderRejectsMistakes(t *testing.T) {
	decoder := strictDecoder(t)
	cases := map[string]string{
		"unknown field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`,
		"misplaced field": `apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  ports: [{port: 1, containerPort: 1}]
`,
		"duplicate field": `apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: "1"}
data: {b: "2"}
`,
		"unknown kind": `apiVersion: apps/v1
kind: Deploymnet
metadata: {name: x}
`,
	}
	for name, doc := range cases {
		if _, err := decodeAll(t, decoder, name, []byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := `apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: "1"}
`
	if _, err := decodeAll(t, decoder, "good", []byte(good)); err != nil {
		t.Errorf("a valid ConfigMap was rejected: %v", err)
	}
}

// --- the suite's rules, on the rendered overlays ------------------------------------------

type rendered struct {
	namespaces   []*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	services     []*corev1.Service
	accounts     map[string]*corev1.ServiceAccount
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	policies     []*networkingv1.NetworkPolicy
	certificates []*certManagerCertificate
	issuers      []*certManagerIssuer
	secrets      int
	all          []runtime.Object
}

// workload is what the rules need from a StatefulSet or a Deployment.
type workload struct {
	kind, name string
	replicas   *int32
	selector   *metav1.LabelSelector
	template   corev1.PodTemplateSpec
}

func (r *rendered) workloads() []workload {
	var out []workload
	for _, s := range r.statefulSets {
		out = append(out, workload{"StatefulSet", s.Name, s.Spec.Replicas, s.Spec.Selector, s.Spec.Template})
	}
	for _, d := range r.deployments {
		out = append(out, workload{"Deployment", d.Name, d.Spec.Replicas, d.Spec.Selector, d.Spec.Template})
	}
	return out
}

func load(t *testing.T, overlay string) *rendered {
	t.Helper()
	out := render(t, filepath.Join(k8sDir(t), "overlays", overlay))
	objects, err := decodeAll(t, strictDecoder(t), overlay, out)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{configMaps: map[string]*corev1.ConfigMap{}, accounts: map[string]*corev1.ServiceAccount{}, all: objects}
	for _, obj := range objects {
		switch o := obj.(type) {
		case *corev1.Namespace:
			r.namespaces = append(r.namespaces, o)
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Service:
			r.services = append(r.services, o)
		case *corev1.ServiceAccount:
			r.accounts[o.Name] = o
		case *corev1.Secret:
			r.secrets++
		case *appsv1.StatefulSet:
			r.statefulSets = append(r.statefulSets, o)
		case *appsv1.Deployment:
			r.deployments = append(r.deployments, o)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas = append(r.hpas, o)
		case *networkingv1.NetworkPolicy:
			r.policies = append(r.policies, o)
		case *certManagerCertificate:
			r.certificates = append(r.certificates, o)
		case *certManagerIssuer:
			r.issuers = append(r.issuers, o)
		default:
			t.Fatalf("%s: unexpected object %T", overlay, obj)
		}
	}
	return r
}

func selects(t *testing.T, selector *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		t.Fatalf("bad selector %v: %v", selector, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

func shutdownGrace(t *testing.T, r *rendered) time.Duration {
	t.Helper()
	// The generator appends a content hash to the name (clinical-platform-<hash>).
	var cm *corev1.ConfigMap
	for name, c := range r.configMaps {
		if strings.HasPrefix(name, "clinical-platform-") {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("ConfigMap clinical-platform is missing")
	}
	d, err := time.ParseDuration(cm.Data["CLINICAL_SHUTDOWN_GRACE"])
	if err != nil {
		t.Fatalf("CLINICAL_SHUTDOWN_GRACE: %v", err)
	}
	return d
}

// checkPod returns every rule the pod template breaks; empty means compliant.
func checkPod(t *testing.T, r *rendered, w workload, grace time.Duration) []string {
	t.Helper()
	var errs []string
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s %s: ", w.kind, w.name)+fmt.Sprintf(format, args...))
	}
	spec := w.template.Spec
	svc, known := services[w.name]
	if !known {
		bad("not one of the five services")
		return errs
	}
	if w.selector == nil || !selects(t, w.selector, w.template.Labels) {
		bad("selector does not select its own pods")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		bad("pod securityContext.runAsNonRoot must be true")
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		bad("pod securityContext.runAsUser must be a non-zero uid")
	}
	if psc == nil || psc.FSGroup == nil || psc.RunAsGroup == nil || *psc.FSGroup != *psc.RunAsGroup {
		bad("pod securityContext.fsGroup must equal runAsGroup (mounted secrets are mode 0440)")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("pod seccompProfile must be RuntimeDefault")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		bad("automountServiceAccountToken must be false (the services never call the API server)")
	}
	if _, ok := r.accounts[spec.ServiceAccountName]; !ok || spec.ServiceAccountName == "" {
		bad("serviceAccountName %q has no ServiceAccount", spec.ServiceAccountName)
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		bad("no topologySpreadConstraints")
	}
	zones := false
	for _, c := range spec.TopologySpreadConstraints {
		if c.TopologyKey == "topology.kubernetes.io/zone" {
			zones = true
		}
		if c.LabelSelector == nil || !selects(t, c.LabelSelector, w.template.Labels) {
			bad("topology spread on %s does not select the pods", c.TopologyKey)
		}
	}
	if !zones {
		bad("no topology spread across zones")
	}
	// SIGKILL must never cut the drain short: grace period > preStop + shutdown grace.
	var preStop time.Duration
	if len(spec.Containers) != 1 {
		bad("expected exactly one container, found %d", len(spec.Containers))
		return errs
	}
	c := spec.Containers[0]
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if spec.TerminationGracePeriodSeconds == nil ||
		time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= preStop+grace+5*time.Second {
		bad("terminationGracePeriodSeconds must exceed preStop (%v) + CLINICAL_SHUTDOWN_GRACE (%v) + 5s", preStop, grace)
	}
	if c.Image == "" || !strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":") && !strings.Contains(c.Image, "@sha256:") {
		bad("image %q has no tag or digest", c.Image)
	}
	if !strings.Contains(c.Image, w.name+"-service") {
		bad("image %q is not the %s service's image", c.Image, w.name)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("container readOnlyRootFilesystem must be true")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("container allowPrivilegeEscalation must be false")
	}
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		bad("container must not be privileged")
	}
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		bad("container must drop ALL capabilities and add none")
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[name]
		lim, hasLim := c.Resources.Limits[name]
		if !hasReq || !hasLim {
			bad("%s needs both a request and a limit", name)
			continue
		}
		if req.Cmp(lim) > 0 || req.Cmp(resource.MustParse("0")) <= 0 {
			bad("%s request %s must be > 0 and <= limit %s", name, req.String(), lim.String())
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != svc.port {
		bad("grpc port %d, want %d", ports["grpc"], svc.port)
	}
	if ports["metrics"] != metricsPort {
		bad("metrics port %d, want %d", ports["metrics"], metricsPort)
	}
	// Liveness and startup ask the health server's "liveness" entry; readiness the default.
	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		entry := "liveness"
		if name == "readiness" {
			entry = ""
		}
		for _, e := range checkHealthProbe(probe, svc.port, entry) {
			bad("%s probe: %s", name, e)
		}
	}
	// Environment: the port matches, everything referenced exists, secrets only by reference.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := r.configMaps[ref.Name]
			if !ok {
				bad("env %s: ConfigMap %s does not exist", e.Name, ref.Name)
			} else if _, ok := cm.Data[ref.Key]; !ok {
				bad("env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && strings.Contains(strings.ToLower(e.Value), "password") {
			bad("env %s carries a value", e.Name)
		}
		// A password's *file* (CLINICAL_*_PASSWORD_FILE) is a path; the password itself
		// never is a literal.
		if strings.Contains(strings.ToLower(e.Name), "password") && !strings.HasSuffix(e.Name, "_FILE") &&
			e.ValueFrom == nil {
			bad("env %s must come from a Secret, not a literal", e.Name)
		}
	}
	if port, ok := env["CLINICAL_GRPC_PORT"]; !ok || port.Value != fmt.Sprint(svc.port) {
		bad("CLINICAL_GRPC_PORT must be %d", svc.port)
	}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			if _, ok := r.configMaps[from.ConfigMapRef.Name]; !ok {
				bad("envFrom ConfigMap %s does not exist", from.ConfigMapRef.Name)
			}
		}
	}
	if svc.writer {
		if _, ok := env["CLINICAL_WRITER_ID"]; w.name != "audit" && !ok {
			bad("a partition owner needs a stable CLINICAL_WRITER_ID")
		}
	}
	// Kafka and Redis as the service's own principals, their passwords as mounted files.
	if user := env["CLINICAL_KAFKA_SASL_USERNAME"]; user.Value != w.name {
		bad("CLINICAL_KAFKA_SASL_USERNAME must be the service's own principal %q, not %q", w.name, user.Value)
	}
	mountedFile := func(variable string) {
		path := env[variable].Value
		for _, m := range c.VolumeMounts {
			if m.ReadOnly && path != "" && strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				for _, v := range spec.Volumes {
					if v.Name == m.Name && v.Secret != nil {
						return
					}
				}
			}
		}
		bad("%s (%q) is not a file of a read-only mounted Secret", variable, path)
	}
	mountedFile("CLINICAL_KAFKA_SASL_PASSWORD_FILE")
	mountedFile("CLINICAL_KAFKA_CA_FILE")
	for _, e := range checkTLS(w.name, spec, c) {
		bad("%s", e)
	}
	usesRedis := w.name == "views" || w.name == "audit"
	if user, ok := env["CLINICAL_REDIS_USERNAME"]; ok != usesRedis || (usesRedis && user.Value != w.name) {
		bad("CLINICAL_REDIS_USERNAME must be %q for the services using Redis (views, audit) only", w.name)
	}
	if usesRedis {
		mountedFile("CLINICAL_REDIS_PASSWORD_FILE")
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = true
		if !m.ReadOnly && m.Name != "tmp" {
			bad("volume %s must be mounted read-only", m.Name)
		}
	}
	for _, v := range spec.Volumes {
		if !mounts[v.Name] {
			bad("volume %s is not mounted", v.Name)
		}
		if v.ConfigMap != nil {
			if _, ok := r.configMaps[v.ConfigMap.Name]; !ok {
				bad("volume %s: ConfigMap %s does not exist", v.Name, v.ConfigMap.Name)
			}
		}
		if v.HostPath != nil {
			bad("volume %s: hostPath is not allowed", v.Name)
		}
	}
	return errs
}

func TestOverlaysKeepTheRules(t *testing.T) {
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			r := load(t, overlay)
			grace := shutdownGrace(t, r)

			if r.secrets != 0 {
				t.Errorf("%d Secret objects rendered: secret values never live in the repository", r.secrets)
			}
			if len(r.namespaces) != 1 {
				t.Fatalf("want one Namespace, got %d", len(r.namespaces))
			}
			ns := r.namespaces[0]
			if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("namespace %s must enforce the restricted Pod Security Standard", ns.Name)
			}
			for _, obj := range r.all {
				meta, err := metaOf(obj)
				if err != nil {
					t.Fatal(err)
				}
				if _, isNS := obj.(*corev1.Namespace); !isNS && meta.GetNamespace() != ns.Name {
					t.Errorf("%T %s is in namespace %q, want %q", obj, meta.GetName(), meta.GetNamespace(), ns.Name)
				}
				if meta.GetLabels()["app.kubernetes.io/part-of"] != "clinical-case-management" {
					t.Errorf("%T %s lacks the part-of label", obj, meta.GetName())
				}
			}

			seen := map[string]bool{}
			for _, w := range r.workloads() {
				seen[w.name] = true
				for _, e := range checkPod(t, r, w, grace) {
					t.Error(e)
				}
				svc := services[w.name]
				wantKind := "Deployment"
				if svc.writer {
					wantKind = "StatefulSet"
				}
				if w.kind != wantKind {
					t.Errorf("%s is a %s, want a %s", w.name, w.kind, wantKind)
				}
				podLabels := w.template.Labels
				// A client Service on the gRPC and metrics ports.
				clientService := false
				for _, s := range r.services {
					if s.Spec.ClusterIP != corev1.ClusterIPNone && selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, podLabels) {
						for _, p := range s.Spec.Ports {
							if p.Name == "grpc" && p.Port == svc.port {
								clientService = true
							}
						}
					}
				}
				if !clientService {
					t.Errorf("%s: no Service exposes gRPC port %d", w.name, svc.port)
				}
				// Exactly one PodDisruptionBudget that allows a node drain.
				pdbs := 0
				for _, p := range r.pdbs {
					if selects(t, p.Spec.Selector, podLabels) {
						pdbs++
						if p.Spec.MinAvailable != nil && svc.writer {
							t.Errorf("%s: a single-owner writer with minAvailable blocks every drain", w.name)
						}
					}
				}
				if pdbs != 1 {
					t.Errorf("%s: %d PodDisruptionBudgets, want 1", w.name, pdbs)
				}
				checkNetworkPolicy(t, r, w.name, podLabels, svc.port)
			}
			for name := range services {
				if !seen[name] {
					t.Errorf("service %s has no workload", name)
				}
			}

			// Writers: exactly one owner. Only stateless readers scale horizontally.
			for _, s := range r.statefulSets {
				if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
					t.Errorf("StatefulSet %s: replicas must be 1 (one owner of every partition)", s.Name)
				}
				if s.Spec.ServiceName == "" {
					t.Errorf("StatefulSet %s: no governing Service", s.Name)
				}
			}
			for _, d := range r.deployments {
				if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil ||
					d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
					t.Errorf("Deployment %s: a rollout must never drop below the current capacity", d.Name)
				}
			}
			if len(r.hpas) != 1 {
				t.Fatalf("want one HorizontalPodAutoscaler (views), got %d", len(r.hpas))
			}
			hpa := r.hpas[0]
			if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != "views" {
				t.Errorf("the HPA must scale the views Deployment, not %s/%s", hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name)
			}
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
				t.Errorf("HPA bounds are not sane")
			}

			// A default deny for every pod, and DNS allowed.
			defaultDeny := false
			for _, p := range r.policies {
				if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
					len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 && len(p.Spec.PolicyTypes) == 2 {
					defaultDeny = true
				}
			}
			if !defaultDeny {
				t.Errorf("no default-deny NetworkPolicy")
			}
		})
	}
}

// checkNetworkPolicy: exactly one policy selects the service's pods; its ingress admits
// only the gRPC port (from clients) and the metrics port (from Prometheus); its egress goes
// only to Kafka's TLS listener, Redis for the views and audit, and HTTPS webhook receivers
// for notification, never to everyone. (The identity provider: checkIdentityProviderEgress.)
func checkNetworkPolicy(t *testing.T, r *rendered, name string, podLabels map[string]string, grpcPort int32) {
	t.Helper()
	var matching []*networkingv1.NetworkPolicy
	for _, p := range r.policies {
		if len(p.Spec.PodSelector.MatchLabels) > 0 && selects(t, &p.Spec.PodSelector, podLabels) {
			matching = append(matching, p)
		}
	}
	if len(matching) != 1 {
		t.Errorf("%s: %d service NetworkPolicies, want 1", name, len(matching))
		return
	}
	p := matching[0]
	ingressPorts := map[int32]bool{}
	for _, rule := range p.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("%s: an ingress rule admits every source", name)
		}
		for _, port := range rule.Ports {
			if port.Port == nil {
				t.Errorf("%s: an ingress rule admits every port", name)
				continue
			}
			ingressPorts[port.Port.IntVal] = true
		}
	}
	if len(ingressPorts) != 2 || !ingressPorts[grpcPort] || !ingressPorts[metricsPort] {
		t.Errorf("%s: ingress ports %v, want exactly %d and %d", name, ingressPorts, grpcPort, metricsPort)
	}
	egressPorts := map[int32]bool{}
	for _, rule := range p.Spec.Egress {
		if len(rule.To) == 0 {
			t.Errorf("%s: an egress rule allows every destination", name)
		}
		for _, port := range rule.Ports {
			if port.Port != nil {
				egressPorts[port.Port.IntVal] = true
			}
		}
	}
	if !egressPorts[9093] {
		t.Errorf("%s: no egress to Kafka's TLS listener (9093)", name)
	}
	if egressPorts[9092] {
		t.Errorf("%s: egress to Kafka's plaintext port 9092; the services speak SASL_SSL only", name)
	}
	if usesRedis := name == "views" || name == "audit"; egressPorts[6379] != usesRedis {
		t.Errorf("%s: egress to Redis is %v; only the views and audit use Redis", name, egressPorts[6379])
	}
	// Webhooks are HTTPS only: notification reaches its receivers on 443, nothing else.
	if sendsWebhooks := name == "notification"; egressPorts[443] != sendsWebhooks {
		t.Errorf("%s: egress to webhook receivers (443) is %v; only notification sends webhooks", name, egressPorts[443])
	}
	for port := range egressPorts {
		if port != 9093 && port != 6379 && port != 443 {
			t.Errorf("%s: egress to port %d; the service talks to Kafka (9093), Redis (6379) and HTTPS receivers (443) only", name, port)
		}
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// The rules can fail: a compliant pod breaks them once its root file system is writable,
// it runs as root, its limits are gone or its probe is not gRPC.
func TestRulesRejectBrokenPods(t *testing.T) {
	r := load(t, "prod")
	grace := shutdownGrace(t, r)
	var views workload
	for _, w := range r.workloads() {
		if w.name == "views" {
			views = w
		}
	}
	if views.name == "" {
		t.Fatal("no views workload")
	}
	if errs := checkPod(t, r, views, grace); len(errs) != 0 {
		t.Fatalf("the views pod should comply: %v", errs)
	}
	mutations := map[string]func(*corev1.PodSpec){
		"writable root": func(s *corev1.PodSpec) {
			f := false
			s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		},
		"root user": func(s *corev1.PodSpec) {
			zero := int64(0)
			s.SecurityContext.RunAsUser = &zero
		},
		"no limits": func(s *corev1.PodSpec) { s.Containers[0].Resources.Limits = nil },
		"no probe handler": func(s *corev1.PodSpec) {
			s.Containers[0].ReadinessProbe.Exec = nil
		},
		"native grpc probe": func(s *corev1.PodSpec) {
			s.Containers[0].LivenessProbe.Exec = nil
			s.Containers[0].LivenessProbe.GRPC = &corev1.GRPCAction{Port: 50055}
		},
		"readiness asks liveness": func(s *corev1.PodSpec) {
			s.Containers[0].ReadinessProbe.Exec.Command = []string{healthCheck, "127.0.0.1:50055", "liveness"}
		},
		"liveness asks readiness": func(s *corev1.PodSpec) {
			s.Containers[0].LivenessProbe.Exec.Command = []string{healthCheck, "127.0.0.1:50055"}
		},
		"probe dials another port": func(s *corev1.PodSpec) {
			s.Containers[0].StartupProbe.Exec.Command[1] = "127.0.0.1:50051"
		},
		"check outlives its probe": func(s *corev1.PodSpec) {
			s.Containers[0].ReadinessProbe.Exec.Command = []string{healthCheck, "127.0.0.1:50055", "--timeout-ms=3000"}
		},
		"short grace": func(s *corev1.PodSpec) {
			g := int64(10)
			s.TerminationGracePeriodSeconds = &g
		},
		"missing configmap": func(s *corev1.PodSpec) {
			s.Containers[0].EnvFrom[0].ConfigMapRef.Name = "nope"
		},
		"optional tls secret": func(s *corev1.PodSpec) {
			optional := true
			for i := range s.Volumes {
				if s.Volumes[i].Name == "tls" {
					s.Volumes[i].Secret.Optional = &optional
				}
			}
		},
		"another service's tls secret": func(s *corev1.PodSpec) {
			for i := range s.Volumes {
				if s.Volumes[i].Name == "tls" {
					s.Volumes[i].Secret.SecretName = "case-tls"
				}
			}
		},
		"no tls mount": func(s *corev1.PodSpec) {
			var mounts []corev1.VolumeMount
			for _, m := range s.Containers[0].VolumeMounts {
				if m.Name != "tls" {
					mounts = append(mounts, m)
				}
			}
			s.Containers[0].VolumeMounts = mounts
		},
		"no tls ca variable": func(s *corev1.PodSpec) {
			var env []corev1.EnvVar
			for _, e := range s.Containers[0].Env {
				if e.Name != "CLINICAL_TLS_CA_FILE" {
					env = append(env, e)
				}
			}
			s.Containers[0].Env = env
		},
	}
	for name, mutate := range mutations {
		broken := views
		broken.template = *views.template.DeepCopy()
		mutate(&broken.template.Spec)
		if errs := checkPod(t, r, broken, grace); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The ConfigMap copy of the programs file must equal the case service's own file.
func TestProgramsFileCopyMatches(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(repoRoot(t), "services", "case", "config", "programs.json"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(filepath.Join(k8sDir(t), "base", "config", "programs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(original, copied) {
		t.Errorf("deploy/k8s/base/config/programs.json differs from services/case/config/programs.json: copy it over")
	}
}
