package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// TLS and bearer tokens.
//
// The certificate (Config.TLSCertFile, TLSKeyFile) is read at New and again by
// ReloadCredentials (SIGHUP in the serve command); handshakes take the current one
// (tls.Config.GetCertificate), so a renewed certificate needs no restart and no dropped
// connection. A certificate that fails to load is refused and the old one stays.
//
// Tokens (Config.AuthTokenFile: one per line, blank lines and lines starting with # skipped)
// are compared in constant time: the SHA-256 of the presented token against the SHA-256 of
// every configured token, all of them, so neither the token's length nor which one matched
// shows in the timing. HTTP wants "Authorization: Bearer <token>", gRPC the "authorization"
// metadata with the same value (what grpc's oauth credentials and Triton's clients send).
// Liveness and readiness (/v2/health/*, gRPC ServerLive and ServerReady) stay open for probes;
// /metrics needs the token unless Config.MetricsPublic. Tokens never appear in logs.

// loadCert reads the key pair of cfg.
func loadCert(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s / key %s: %v", certFile, keyFile, err)
	}
	return &c, nil
}

// tlsConfig is the server side of TLS for HTTP and gRPC (nil without a certificate).
func (s *Server) tlsConfig(protos ...string) *tls.Config {
	if s.cert.Load() == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}

// readTokens reads a token file: one token per line.
func readTokens(path string) ([][32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth token file: %v", err)
	}
	var sums [][32]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.ContainsAny(t, " \t") {
			return nil, fmt.Errorf("auth token file %s: line %d: a token has no spaces", path, n)
		}
		sums = append(sums, sha256.Sum256([]byte(t)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth token file %s: %v", path, err)
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("auth token file %s: no token in it", path)
	}
	return sums, nil
}

// ReloadCredentials reads the TLS certificate and the token file again (those configured).
// On an error nothing changes.
func (s *Server) ReloadCredentials() error {
	var cert *tls.Certificate
	var toks [][32]byte
	var err error
	if s.cfg.TLSCertFile != "" {
		if cert, err = loadCert(s.cfg.TLSCertFile, s.cfg.TLSKeyFile); err != nil {
			return err
		}
	}
	if s.cfg.AuthTokenFile != "" {
		if toks, err = readTokens(s.cfg.AuthTokenFile); err != nil {
			return err
		}
	}
	if cert != nil {
		s.cert.Store(cert)
	}
	if toks != nil {
		s.tokens.Store(&toks)
	}
	return nil
}

// authorized says whether the value of an Authorization header (or gRPC metadata) carries a
// configured token; always true when no token file is configured.
func (s *Server) authorized(header string) bool {
	tp := s.tokens.Load()
	if tp == nil {
		return true
	}
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(header, "bearer ")
	}
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for _, t := range *tp {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return match == 1
}

// errUnauthenticated is answered 401 (HTTP) or UNAUTHENTICATED (gRPC).
var errUnauthenticated = errors.New("missing or wrong bearer token (Authorization: Bearer <token>)")

// openPath says whether an HTTP path is served without a token.
func (s *Server) openPath(path string) bool {
	return strings.HasPrefix(path, "/v2/health/") || (path == "/metrics" && s.cfg.MetricsPublic)
}

// requireToken wraps h: a request without a valid token is answered 401.
func (s *Server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.openPath(r.URL.Path) && !s.authorized(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="artnet"`)
			if r.ContentLength != 0 {
				w.Header().Set("Connection", "close") // do not read an unauthenticated body
			}
			writeError(w, http.StatusUnauthorized, errUnauthenticated.Error())
			return
		}
		h.ServeHTTP(w, r)
	})
}

// certState is the part of Server that holds credentials.
type certState struct {
	cert   atomic.Pointer[tls.Certificate]
	tokens atomic.Pointer[[][32]byte]
}
