package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The lean binary must not link the training stack.
func TestNoGoMLXDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	found := false
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/gomlx/") {
			t.Errorf("artnet-serve depends on %s", d)
		}
		found = found || d == "github.com/artnet/artnet/server"
	}
	if !found {
		t.Errorf("go list -deps does not list the server package: wrong folder?")
	}
}

func TestAppCommands(t *testing.T) {
	app := newApp()
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "serve,predict" {
		t.Fatalf("commands %v, want serve, predict", names)
	}
}
