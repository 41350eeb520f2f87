package onnxrt

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// TestORTAPIIndexIsGenerated re-derives ortapi_index.go from onnxruntime_go's header (and checks
// ortapi.h's signatures against it, which the generator does): a go.mod upgrade of
// onnxruntime_go that moves a function, or a hand edit, fails here.
func TestORTAPIIndexIsGenerated(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH: run `go generate ./onnxrt` by hand to check ortapi_index.go")
	}
	cmd := exec.CommandContext(t.Context(), "go", "run", "./internal/ortapigen", "-o", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("ortapigen: %v: %s", err, stderr.String())
	}
	want, err := os.ReadFile("ortapi_index.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ortapi_index.go is stale: run `go generate ./onnxrt`; the generator gives:\n%s", got)
	}
}

// TestORTGoLayout: the mirror of onnxruntime_go's SessionOptions matches, and its ortEnv is the
// variable reached by linkname (IsInitialized reads the same one).
func TestORTGoLayout(t *testing.T) {
	if err := ortGoLayout(); err != nil {
		t.Fatal(err)
	}
	if err := Init(""); err != nil {
		t.Fatal(err)
	}
	if ortGoEnv == nil {
		t.Fatal("onnxruntime_go is initialized but the linked ortEnv is nil")
	}
	plugins.Lock()
	api, err := apiLocked()
	plugins.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.env(); err != nil {
		t.Fatal(err)
	}
}
