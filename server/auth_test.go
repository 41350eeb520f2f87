package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/server/kservepb"
)

// HTTPS and gRPC over TLS with tokens: probes open, everything else 401 / UNAUTHENTICATED
// without the token, /metrics behind it unless MetricsPublic; the token never in the logs.
func TestTLSAndTokens(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir, "one")
	tokFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokFile, []byte("# operators\nsecret-one\n\nsecret-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LockedBuffer{}
	cfg := testConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.AuthTokenFile = cert, key, tokFile
	b := serveBoth(t, cfg, tinyModel(t), pool, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	req := func(method, path, token string) int {
		r, err := http.NewRequest(method, b.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := b.http.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.TLS == nil {
			t.Errorf("%s: answered without TLS", path)
		}
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/v2/health/live", "", 200}, {"/v2/health/ready", "", 200},
		{"/v2/models/artnet", "", 401}, {"/v2/models/artnet", "wrong", 401}, {"/v2/models/artnet", "secret-on", 401},
		{"/v2/models/artnet", "secret-one", 200}, {"/v2/models/artnet", "secret-two", 200},
		{"/metrics", "", 401}, {"/metrics", "secret-two", 200}, {"/", "", 401}, {"/v2/repository/index", "", 401},
	} {
		if got := req(http.MethodGet, c.path, c.token); got != c.want {
			t.Errorf("GET %s with token %q: %d, want %d", c.path, c.token, got, c.want)
		}
	}
	if got := req(http.MethodPost, "/v1/predict", ""); got != 401 {
		t.Errorf("POST /v1/predict without token: %d, want 401", got)
	}

	ctx := context.Background()
	if r, err := b.client.ServerLive(ctx, &kservepb.ServerLiveRequest{}); err != nil || !r.GetLive() {
		t.Errorf("ServerLive without token: %v %v", r, err)
	}
	if r, err := b.client.ServerReady(ctx, &kservepb.ServerReadyRequest{}); err != nil || !r.GetReady() {
		t.Errorf("ServerReady without token: %v %v", r, err)
	}
	size := spec.Tiny().ImageSize
	infer := tensorRequest(runtimetest.Images(1, size, 3), 1, size, true)
	if _, err := b.client.ModelInfer(ctx, infer); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ModelInfer without token: %v, want Unauthenticated", err)
	}
	if _, err := b.client.ModelMetadata(ctx, &kservepb.ModelMetadataRequest{Name: ModelName}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ModelMetadata without token: %v, want Unauthenticated", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope")
	if _, err := b.client.ModelInfer(bad, infer); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ModelInfer with a wrong token: %v, want Unauthenticated", err)
	}
	good := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer secret-one")
	if _, err := b.client.ModelInfer(good, infer); err != nil {
		t.Errorf("ModelInfer with the token: %v", err)
	}
	if strings.Contains(logs.String(), "secret") || strings.Contains(logs.String(), "nope") {
		t.Errorf("a token is in the logs:\n%s", logs.String())
	}

	// A new certificate and token file, read again: new handshakes see them; a broken
	// certificate is refused and the old one stays.
	cert2, key2, pool2 := selfSigned(t, dir, "two")
	if err := os.Rename(cert2, cert); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(key2, key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, []byte("secret-three\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.s.ReloadCredentials(); err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(b.url, "https://"), &tls.Config{RootCAs: pool2, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake with the new certificate's CA after ReloadCredentials: %v", err)
	}
	conn.Close()
	b.http.CloseIdleConnections()
	b.http.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool2
	if got := req(http.MethodGet, "/v2/models/artnet", "secret-one"); got != 401 {
		t.Errorf("old token after reload: %d, want 401", got)
	}
	if got := req(http.MethodGet, "/v2/models/artnet", "secret-three"); got != 200 {
		t.Errorf("new token after reload: %d, want 200", got)
	}
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.s.ReloadCredentials(); err == nil || !strings.Contains(err.Error(), cert) {
		t.Errorf("broken certificate: %v, want an error naming %s", err, cert)
	}
	if got := req(http.MethodGet, "/v2/health/live", ""); got != 200 {
		t.Errorf("after a refused certificate: %d", got)
	}
}

func TestMetricsPublic(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AuthTokenFile, cfg.MetricsPublic = tokFile, true
	r := serve(t, cfg, tinyModel(t), nil)
	if resp, _ := get(t, r.url+"/metrics", nil); resp.StatusCode != 200 {
		t.Errorf("/metrics with MetricsPublic: %d", resp.StatusCode)
	}
	if resp, _ := get(t, r.url+"/v2", nil); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("/v2 without token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestBadCredentialsConfig(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{TLSCertFile: "x.crt"}, "TLSKeyFile"},
		{Config{TLSCertFile: filepath.Join(dir, "none.crt"), TLSKeyFile: filepath.Join(dir, "none.key")}, "none.crt"},
		{Config{AuthTokenFile: filepath.Join(dir, "missing")}, "missing"},
		{Config{AuthTokenFile: empty}, "no token"},
	} {
		_, err := New(c.cfg, tinyModel(t), quiet())
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one line with %q", c.cfg, err, c.want)
		}
	}
}
