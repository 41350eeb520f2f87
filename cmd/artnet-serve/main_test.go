package main

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/onnxrt/runtimetest"
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
	// The same commands as artnet's: the same flags.
	flags := func(c *cli.Command) string {
		var names []string
		for _, f := range c.Flags {
			names = append(names, f.Names()...)
		}
		return strings.Join(names, ",")
	}
	for i, want := range []*cli.Command{command.Serve(), command.Predict(command.PredictOptions{})} {
		if got, w := flags(app.Commands[i]), flags(want); got != w {
			t.Errorf("%s flags %s, want the shared %s", want.Name, got, w)
		}
	}
}

// The binary serves until SIGTERM, then shuts down gracefully and exits 0.
func TestServeSIGTERM(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "artnet-serve")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	model := runtimetest.WriteTiny(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "--model", model, "--addr", addr, "--threads", "1")
	cmd.Stdout, cmd.Stderr = &logs, &logs // the working directory (this package) finds the ORT library
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("serve not ready after 20 s\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("serve still running 20 s after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") || !strings.Contains(logs.String(), "stopped") {
		t.Errorf("logs lack the graceful shutdown:\n%s", logs.String())
	}
}
