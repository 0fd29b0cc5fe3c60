package validate

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The health check binary every image ships (services/*/Dockerfile). The services accept
// mutual TLS only and the kubelet's native gRPC probe cannot present a client certificate,
// so every probe runs this binary inside the container, where it reads the pod's own TLS
// files from the same CLINICAL_TLS_* variables as the service.
const healthCheck = "/usr/local/bin/clinical_health_check"

// clinical_health_check's deadline when --timeout-ms is not given (libs/grpcx/tools).
const healthCheckDefaultTimeoutMs = 2000

// checkHealthProbe: the probe runs `clinical_health_check 127.0.0.1:<port> [entry]
// [--timeout-ms=N]` and nothing else, and the check's own deadline ends before the
// kubelet's timeout, so a slow service is a failed check rather than a killed process.
func checkHealthProbe(probe *corev1.Probe, port int32, entry string) []string {
	if probe == nil {
		return []string{"missing"}
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if probe.GRPC != nil || probe.HTTPGet != nil || probe.TCPSocket != nil {
		bad("must be an exec probe running %s (a kubelet probe cannot present a client certificate)", healthCheck)
	}
	if probe.Exec == nil || len(probe.Exec.Command) < 2 {
		bad("must run %s 127.0.0.1:%d", healthCheck, port)
		return errs
	}
	command := probe.Exec.Command
	if command[0] != healthCheck {
		bad("runs %q, want %s", command[0], healthCheck)
	}
	// Loopback: the certificate is valid for 127.0.0.1, and the probe stays inside the pod.
	if want := fmt.Sprintf("127.0.0.1:%d", port); command[1] != want {
		bad("dials %q, want %s", command[1], want)
	}
	timeoutMs := healthCheckDefaultTimeoutMs
	asked := ""
	for _, arg := range command[2:] {
		if value, ok := strings.CutPrefix(arg, "--timeout-ms="); ok {
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				bad("bad %s", arg)
			}
			timeoutMs = n
			continue
		}
		if asked != "" {
			bad("unexpected argument %q", arg)
		}
		asked = arg
	}
	if asked != entry {
		bad("asks the health entry %q, want %q", asked, entry)
	}
	timeoutSeconds := probe.TimeoutSeconds
	if timeoutSeconds == 0 {
		timeoutSeconds = 1 // the Kubernetes default
	}
	if int64(timeoutMs) >= int64(timeoutSeconds)*1000 {
		bad("the check's deadline %d ms must end before timeoutSeconds %d", timeoutMs, timeoutSeconds)
	}
	return errs
}
