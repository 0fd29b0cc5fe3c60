package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The Strimzi custom resources of deploy/k8s/examples/strimzi are not k8s.io/api types.
// They are decoded strictly into these structs, which mirror the subset of Strimzi's
// kafka.strimzi.io/v1beta2 schema (0.45) the examples use: a field outside it (a typo, a
// misplaced key) fails the test. Core objects in the examples use the official decoder.
type strimziKafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}

type strimziNodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas int32    `json:"replicas"`
		Roles    []string `json:"roles"`
		Storage  struct {
			Type    string `json:"type"`
			Volumes []struct {
				ID            int32  `json:"id"`
				Type          string `json:"type"`
				Size          string `json:"size"`
				DeleteClaim   bool   `json:"deleteClaim"`
				KraftMetadata string `json:"kraftMetadata,omitempty"`
			} `json:"volumes"`
		} `json:"storage"`
	} `json:"spec"`
}

type strimziKafka struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Kafka struct {
			Version         string `json:"version"`
			MetadataVersion string `json:"metadataVersion"`
			Listeners       []struct {
				Name           string `json:"name"`
				Port           int32  `json:"port"`
				Type           string `json:"type"`
				TLS            bool   `json:"tls"`
				Authentication *struct {
					Type string `json:"type"`
				} `json:"authentication,omitempty"`
			} `json:"listeners"`
			Authorization *struct {
				Type       string   `json:"type"`
				SuperUsers []string `json:"superUsers,omitempty"`
			} `json:"authorization,omitempty"`
			Config map[string]any `json:"config"`
		} `json:"kafka"`
		EntityOperator struct {
			TopicOperator map[string]any `json:"topicOperator"`
			UserOperator  map[string]any `json:"userOperator"`
		} `json:"entityOperator"`
	} `json:"spec"`
}

// A KafkaUser with SCRAM authentication and simple-authorization ACLs.
type strimziKafkaUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Authentication struct {
			Type string `json:"type"`
		} `json:"authentication"`
		Authorization struct {
			Type string `json:"type"`
			ACLs []struct {
				Resource struct {
					Type        string `json:"type"`
					Name        string `json:"name"`
					PatternType string `json:"patternType"`
				} `json:"resource"`
				Operations []string `json:"operations"`
				Host       string   `json:"host"`
			} `json:"acls"`
		} `json:"authorization"`
	} `json:"spec"`
}

func decodeExample(t *testing.T, file string) (core []any, topics []strimziKafkaTopic, kafkas []strimziKafka, pools []strimziNodePool) {
	t.Helper()
	core, topics, kafkas, pools, _ = decodeStrimzi(t, file)
	return
}

func decodeStrimzi(t *testing.T, file string) (core []any, topics []strimziKafkaTopic, kafkas []strimziKafka, pools []strimziNodePool, users []strimziKafkaUser) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	decoder := strictDecoder(t)
	for i, doc := range docs {
		var head metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		where := fmt.Sprintf("%s document %d (%s)", file, i, head.Kind)
		if !strings.HasPrefix(head.APIVersion, "kafka.strimzi.io/") {
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			core = append(core, obj)
			continue
		}
		if head.APIVersion != "kafka.strimzi.io/v1beta2" {
			t.Errorf("%s: apiVersion %s", where, head.APIVersion)
			continue
		}
		var target any
		switch head.Kind {
		case "KafkaTopic":
			topics = append(topics, strimziKafkaTopic{})
			target = &topics[len(topics)-1]
		case "Kafka":
			kafkas = append(kafkas, strimziKafka{})
			target = &kafkas[len(kafkas)-1]
		case "KafkaNodePool":
			pools = append(pools, strimziNodePool{})
			target = &pools[len(pools)-1]
		case "KafkaUser":
			users = append(users, strimziKafkaUser{})
			target = &users[len(users)-1]
		default:
			t.Errorf("%s: unexpected Strimzi kind", where)
			continue
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
	return
}

func TestStrimziExample(t *testing.T) {
	dir := filepath.Join(k8sDir(t), "examples", "strimzi")
	core, _, kafkas, pools := decodeExample(t, filepath.Join(dir, "kafka.yaml"))
	if len(kafkas) != 1 || len(pools) != 1 || len(core) != 1 {
		t.Fatalf("want one Namespace, Kafka and KafkaNodePool; got %d, %d, %d", len(core), len(kafkas), len(pools))
	}
	if ns, ok := core[0].(*corev1.Namespace); !ok || ns.Labels["clinical.platform/kafka"] != "true" {
		t.Errorf("the kafka namespace must carry the label the NetworkPolicies select")
	}
	k := kafkas[0]
	if !strings.HasPrefix(k.Spec.Kafka.Version, "3.9.") {
		t.Errorf("Kafka %s: the services need a 3.9.x broker", k.Spec.Kafka.Version)
	}
	if fmt.Sprint(k.Spec.Kafka.Config["transaction.state.log.min.isr"]) != "2" ||
		fmt.Sprint(k.Spec.Kafka.Config["auto.create.topics.enable"]) != "false" {
		t.Errorf("Kafka config: replicated transactions and no auto-created topics")
	}
	if pools[0].Labels["strimzi.io/cluster"] != k.Name {
		t.Errorf("node pool does not belong to the Kafka %s", k.Name)
	}
	// No plaintext and no anonymous access: every listener is TLS with SCRAM-SHA-512, and
	// the cluster authorizes by ACL.
	if len(k.Spec.Kafka.Listeners) == 0 {
		t.Errorf("Kafka %s has no listener", k.Name)
	}
	for _, l := range k.Spec.Kafka.Listeners {
		if !l.TLS || l.Authentication == nil || l.Authentication.Type != "scram-sha-512" {
			t.Errorf("listener %s: want tls: true with authentication scram-sha-512", l.Name)
		}
		if l.Port != 9093 {
			t.Errorf("listener %s: port %d; the NetworkPolicies and overlays use 9093", l.Name, l.Port)
		}
	}
	if a := k.Spec.Kafka.Authorization; a == nil || a.Type != "simple" {
		t.Errorf("Kafka %s: want authorization type simple (ACLs, deny by default)", k.Name)
	}

	_, topics, _, _ := decodeExample(t, filepath.Join(dir, "kafka-topics.yaml"))
	byName := map[string]strimziKafkaTopic{}
	for _, topic := range topics {
		byName[topic.Name] = topic
		if topic.Labels["strimzi.io/cluster"] != k.Name {
			t.Errorf("topic %s: not bound to the Kafka %s", topic.Name, k.Name)
		}
	}
	if p, ok := byName["clinical.access.policies.v1"]; !ok || p.Spec.Config["cleanup.policy"] != "compact" {
		t.Errorf("clinical.access.policies.v1: want a compacted KafkaTopic (the latest policy snapshot per key)")
	}
	for name, partitions := range map[string]int32{"clinical.access.v1": 12, "clinical.audit.checkpoints.v1": 1,
		"clinical.case.organisation.v1": 12} {
		topic, ok := byName[name]
		if !ok || topic.Spec.Partitions != partitions || fmt.Sprint(topic.Spec.Config["retention.ms"]) != "-1" {
			t.Errorf("%s: want a KafkaTopic with %d partitions, kept forever", name, partitions)
		}
	}
	for _, events := range []string{"clinical.case.events.v1", "clinical.scheduling.events.v1", "clinical.notification.events.v1"} {
		topic, ok := byName[events]
		if !ok {
			t.Errorf("no KafkaTopic %s", events)
			continue
		}
		c := topic.Spec.Config
		if topic.Spec.Partitions != 12 || fmt.Sprint(c["retention.ms"]) != "-1" || c["cleanup.policy"] != "delete" {
			t.Errorf("%s: want 12 partitions, retention.ms=-1, cleanup.policy=delete; got %d, %v, %v",
				events, topic.Spec.Partitions, c["retention.ms"], c["cleanup.policy"])
		}
		for _, side := range []string{".snapshots", ".checkpoints"} {
			s, ok := byName[events+side]
			if !ok || s.Spec.Config["cleanup.policy"] != "compact" || s.Spec.Partitions != topic.Spec.Partitions {
				t.Errorf("%s%s: want a compacted topic partitioned like the events", events, side)
			}
		}
	}
}

func TestManagedRedisExample(t *testing.T) {
	core, _, _, _ := decodeExample(t, filepath.Join(k8sDir(t), "examples", "managed-redis", "redis.yaml"))
	if len(core) != 3 {
		t.Fatalf("want Namespace, Service and NetworkPolicy, got %d objects", len(core))
	}
	if ns, ok := core[0].(*corev1.Namespace); !ok || ns.Labels["clinical.platform/redis"] != "true" {
		t.Errorf("the redis namespace must carry the label the NetworkPolicies select")
	}
}
