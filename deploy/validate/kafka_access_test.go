package validate

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// One ACL binding as both files can state it: principal, resource type, pattern type,
// resource name, operation (always ALLOW, from any host).
type aclBinding struct {
	principal, resourceType, patternType, name, operation string
}

func (b aclBinding) String() string {
	return fmt.Sprintf("%s %s %s %s %s", b.principal, b.resourceType, b.patternType, b.name, b.operation)
}

// localACLs parses deploy/local/kafka/acls.txt, the rules of the local broker
// (ApplyAccess.java reads the same format).
func localACLs(t *testing.T) map[aclBinding]bool {
	t.Helper()
	file := filepath.Join(repoRoot(t), "deploy", "local", "kafka", "acls.txt")
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	comment := regexp.MustCompile(`#.*`)
	out := map[aclBinding]bool{}
	scanner := bufio.NewScanner(f)
	for number := 1; scanner.Scan(); number++ {
		fields := strings.Fields(comment.ReplaceAllString(scanner.Text(), ""))
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 5 {
			t.Fatalf("%s:%d: want 5 fields, got %d", file, number, len(fields))
		}
		for _, operation := range strings.Split(fields[4], ",") {
			out[aclBinding{fields[0], fields[1], fields[2], fields[3], operation}] = true
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no ACL", file)
	}
	return out
}

// Strimzi's spellings, mapped to Kafka's (the local file's).
var (
	strimziResourceTypes = map[string]string{"topic": "TOPIC", "group": "GROUP", "transactionalId": "TRANSACTIONAL_ID", "cluster": "CLUSTER"}
	strimziPatternTypes  = map[string]string{"literal": "LITERAL", "prefix": "PREFIXED"}
	strimziOperations    = map[string]string{"Read": "READ", "Write": "WRITE", "Create": "CREATE", "Describe": "DESCRIBE",
		"Delete": "DELETE", "Alter": "ALTER", "AlterConfigs": "ALTER_CONFIGS", "DescribeConfigs": "DESCRIBE_CONFIGS",
		"ClusterAction": "CLUSTER_ACTION", "IdempotentWrite": "IDEMPOTENT_WRITE", "All": "ALL"}
)

func strimziUsers(t *testing.T) []strimziKafkaUser {
	t.Helper()
	_, _, _, _, users := decodeStrimzi(t, filepath.Join(k8sDir(t), "examples", "strimzi", "kafka-users.yaml"))
	if len(users) == 0 {
		t.Fatal("kafka-users.yaml holds no KafkaUser")
	}
	return users
}

func strimziACLs(t *testing.T) map[aclBinding]bool {
	t.Helper()
	out := map[aclBinding]bool{}
	for _, user := range strimziUsers(t) {
		if user.Spec.Authentication.Type != "scram-sha-512" || user.Spec.Authorization.Type != "simple" {
			t.Errorf("KafkaUser %s: want authentication scram-sha-512 and authorization simple", user.Name)
		}
		if user.Labels["strimzi.io/cluster"] != "clinical" {
			t.Errorf("KafkaUser %s: not bound to the Kafka clinical", user.Name)
		}
		for i, acl := range user.Spec.Authorization.ACLs {
			where := fmt.Sprintf("KafkaUser %s acl %d", user.Name, i)
			resourceType, okType := strimziResourceTypes[acl.Resource.Type]
			patternType, okPattern := strimziPatternTypes[acl.Resource.PatternType]
			if !okType || !okPattern || acl.Resource.Name == "" {
				t.Errorf("%s: resource %+v is not one the local file can state", where, acl.Resource)
				continue
			}
			if acl.Host != "*" {
				t.Errorf("%s: host %q; the local rules allow any host", where, acl.Host)
			}
			for _, op := range acl.Operations {
				operation, ok := strimziOperations[op]
				if !ok {
					t.Errorf("%s: unknown operation %q", where, op)
					continue
				}
				out[aclBinding{user.Name, resourceType, patternType, acl.Resource.Name, operation}] = true
			}
		}
	}
	return out
}

func sortedDifference(a, b map[aclBinding]bool) []string {
	var out []string
	for binding := range a {
		if !b[binding] {
			out = append(out, binding.String())
		}
	}
	sort.Strings(out)
	return out
}

// The Strimzi example's KafkaUsers and the local broker's acls.txt are the same rules:
// what the tests prove against the local broker is what a cluster gets.
func TestStrimziUsersHaveExactlyTheLocalAcls(t *testing.T) {
	local, strimzi := localACLs(t), strimziACLs(t)
	if only := sortedDifference(local, strimzi); len(only) > 0 {
		t.Errorf("in deploy/local/kafka/acls.txt but not in kafka-users.yaml:\n  %s", strings.Join(only, "\n  "))
	}
	if only := sortedDifference(strimzi, local); len(only) > 0 {
		t.Errorf("in kafka-users.yaml but not in deploy/local/kafka/acls.txt:\n  %s", strings.Join(only, "\n  "))
	}
}

// The comparison can fail: a binding dropped from one side, or a changed operation, is found.
func TestAclComparisonFindsDifferences(t *testing.T) {
	local := localACLs(t)
	changed := map[aclBinding]bool{}
	for binding := range local {
		changed[binding] = true
	}
	var one aclBinding
	for binding := range local {
		one = binding
		break
	}
	delete(changed, one)
	widened := one
	widened.operation = "ALL"
	changed[widened] = true
	if len(sortedDifference(local, changed)) != 1 || len(sortedDifference(changed, local)) != 1 {
		t.Errorf("a replaced binding must show on both sides")
	}
}

// What the ACLs mean for the whole: no principal reads the access records but audit; no
// principal writes another service's topics; nobody is granted ALL or cluster rights.
func TestAclsKeepTheDataPlaneRules(t *testing.T) {
	owners := map[string]string{"clinical.case.": "case", "clinical.scheduling.": "scheduling",
		"clinical.notification.": "notification", "clinical.audit.": "audit", "views.": "views"}
	for binding := range localACLs(t) {
		if binding.operation == "ALL" || binding.resourceType == "CLUSTER" {
			t.Errorf("%s: no ALL and no cluster-wide rights for a service", binding)
		}
		if binding.resourceType != "TOPIC" {
			continue
		}
		if binding.name == "clinical.access." && binding.operation == "READ" && binding.principal != "audit" {
			t.Errorf("%s: only audit reads the access records", binding)
		}
		if owner, owned := owners[binding.name]; owned && binding.operation != "READ" && owner != binding.principal {
			t.Errorf("%s: writes or creates another service's topics", binding)
		}
	}
}

// Every overlay connects each service as its KafkaUser over the TLS listener, and every
// writer id (transactional-id prefix) is inside what its user may use.
func TestOverlaysConnectAsTheirKafkaUsers(t *testing.T) {
	prefixes := map[string]string{} // principal -> transactional-id prefix
	for binding := range localACLs(t) {
		if binding.resourceType == "TRANSACTIONAL_ID" {
			prefixes[binding.principal] = binding.name
		}
	}
	users := map[string]bool{}
	for _, user := range strimziUsers(t) {
		users[user.Name] = true
	}
	generated := func(t *testing.T, r *rendered, name string) *corev1.ConfigMap {
		for full, cm := range r.configMaps {
			if strings.HasPrefix(full, name+"-") { // the generator appends a content hash
				return cm
			}
		}
		t.Fatalf("no ConfigMap %s", name)
		return nil
	}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			r := load(t, overlay)
			platform := generated(t, r, "clinical-platform")
			if platform.Data["CLINICAL_KAFKA_SECURITY_PROTOCOL"] != "SASL_SSL" ||
				!strings.HasSuffix(platform.Data["CLINICAL_KAFKA_BOOTSTRAP"], ":9093") {
				t.Errorf("Kafka: want SASL_SSL on the TLS listener (:9093), got %q at %q",
					platform.Data["CLINICAL_KAFKA_SECURITY_PROTOCOL"], platform.Data["CLINICAL_KAFKA_BOOTSTRAP"])
			}
			writers := generated(t, r, "clinical-writers")
			for _, service := range []string{"case", "scheduling", "notification"} {
				id := writers.Data["CLINICAL_"+strings.ToUpper(service)+"_WRITER_ID"]
				if prefix := prefixes[service]; prefix == "" || !strings.HasPrefix(id, prefix) {
					t.Errorf("%s writer id %q is outside its transactional-id ACL prefix %q", service, id, prefix)
				}
			}
			for _, w := range r.workloads() {
				if !users[w.name] {
					t.Errorf("%s: no KafkaUser %q in the Strimzi example", w.name, w.name)
				}
			}
		})
	}
}
