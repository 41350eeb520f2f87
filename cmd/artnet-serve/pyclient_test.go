package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// The independent client: Debian's python3-grpcio compiling KServe's published proto
// (scripts/grpc_client_check.py), over TLS with a token, against the binary — Live, Ready,
// ModelReady, metadata, ModelInfer (raw and typed) equal to REST within 1e-5, UNAUTHENTICATED
// without the token, HTTP 401 while /v2/health/live answers.
func TestPythonGRPCClient(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := exec.Command(py, "-c", "import grpc, grpc_tools.protoc").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3-grpcio and python3-grpc-tools", "apt-get install python3-grpcio python3-grpc-tools")
	}
	s := startTLSServe(t, runtimetest.WriteTiny(t))
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(s.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "../../scripts/grpc_client_check.py", "--grpc", s.grpcAddr, "--http", s.url,
		"--ca", s.certFile, "--token-file", tokFile, "--proto", "../../server/kservepb/grpc_predict_v2.proto")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grpc_client_check.py: %v\n%s\nserver logs:\n%s", err, out, s.logs.String())
	}
	if !strings.Contains(string(out), `"no_token_grpc": "UNAUTHENTICATED"`) {
		t.Errorf("the check's report lacks the UNAUTHENTICATED result:\n%s", out)
	}
	t.Logf("python3-grpcio client: %s", strings.TrimSpace(string(out)))
	s.stop(t)
}
