package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/testcert"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// servedBinary is a running artnet-serve, over HTTPS with a token.
type servedBinary struct {
	cmd      *exec.Cmd
	logs     *testenv.LockedBuffer
	done     chan struct{} // closed when the process has exited (waitErr set)
	waitErr  error
	url      string // https://127.0.0.1:port
	grpcAddr string
	token    string
	certFile string
	client   *http.Client
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startTLSServe builds the binary and serves model over HTTPS and gRPC/TLS with a token file,
// waiting until it is ready.
func startTLSServe(t *testing.T, model string) *servedBinary {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "artnet-serve")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cert, key, pool := testcert.Write(t, dir, "serve")
	tokFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokFile, []byte("tok-"+fmt.Sprint(time.Now().UnixNano())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, _ := os.ReadFile(tokFile)
	s := &servedBinary{logs: &testenv.LockedBuffer{}, done: make(chan struct{}), url: "https://" + freeAddr(t), grpcAddr: freeAddr(t),
		token: strings.TrimSpace(string(tok)), certFile: cert, client: tlsClient(pool)}
	s.cmd = exec.Command(bin, "serve", "--model", model, "--addr", strings.TrimPrefix(s.url, "https://"), "--grpc-addr", s.grpcAddr,
		"--tls-cert", cert, "--tls-key", key, "--auth-token-file", tokFile, "--threads", "1", "--batch", "4")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.client.Get(s.url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited early: %v\n%s", s.waitErr, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after 30 s\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}}
}

// stop sends SIGTERM and wants exit status 0.
func (s *servedBinary) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		if s.waitErr != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", s.waitErr, s.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still running 30 s after SIGTERM\n%s", s.logs.String())
	}
}

// infer sends one v2 request and returns the status and the model_version answered.
func (s *servedBinary) infer(body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+"/v2/models/artnet/infer", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var r struct {
		ModelVersion string `json:"model_version"`
	}
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return resp.StatusCode, "", err
		}
	}
	return resp.StatusCode, r.ModelVersion, nil
}

func tinyInferBody(t *testing.T) []byte {
	size := spec.Tiny().ImageSize
	b, err := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "FP32",
		"shape": []int{1, 3, size, size}, "data": runtimetest.Images(1, size, 11)}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A model replaced under load over HTTPS: the file swapped and SIGHUP sent while a client
// sends a few hundred requests; every request is answered 200, the new model (version 2)
// answers afterwards; a corrupt replacement is refused and version 2 keeps serving.
func TestReloadUnderLoadHTTPS(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	s := startTLSServe(t, model)
	body := tinyInferBody(t)
	const total, clients = 300, 6
	var mu sync.Mutex
	codes := map[int]int{}
	versions := map[string]int{}
	var errs []error
	var sent sync.WaitGroup
	next := make(chan int)
	swapped := make(chan struct{})
	for c := 0; c < clients; c++ {
		sent.Add(1)
		go func() {
			defer sent.Done()
			for range next {
				code, v, err := s.infer(body)
				mu.Lock()
				codes[code]++
				versions[v]++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < total; i++ {
		if i == total/3 {
			go func() {
				defer close(swapped)
				// Replace the file the way an operator's deploy does (write aside, rename), then SIGHUP.
				if err := atomicfile.WriteFile(model, runtimetest.TinyModel(spec.Tiny()), 0o644); err != nil {
					t.Error(err)
				}
				if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
					t.Error(err)
				}
			}()
		}
		next <- i
	}
	close(next)
	sent.Wait()
	<-swapped
	if len(errs) > 0 || codes[200] != total {
		t.Fatalf("under reload: codes %v, errors %v\n%s", codes, errs, s.logs.String())
	}
	waitVersion := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, v, err := s.infer(body)
			if err == nil && code == 200 && v == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("want version %s: got %d %q %v\n%s", want, code, v, err, s.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitVersion("2")
	t.Logf("%d requests over HTTPS during the reload: codes %v, answered by version %v", total, codes, versions)

	// A corrupt replacement: refused in one line, version 2 keeps serving.
	if err := atomicfile.WriteFile(model, []byte("this is not an ONNX model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), "model reload refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged after a corrupt replacement\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if code, v, err := s.infer(body); err != nil || code != 200 || v != "2" {
			t.Fatalf("after the corrupt replacement: %d %q %v", code, v, err)
		}
	}
	logs := s.logs.String()
	if strings.Contains(logs, s.token) {
		t.Errorf("the token is in the logs")
	}
	s.stop(t)
}
