package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/artnet/artnet/internal/testcert"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/server/kservepb"
)

// both is a Server serving HTTP and gRPC on loopback ports.
type both struct {
	s      *Server
	url    string // http:// or https://
	http   *http.Client
	conn   *grpc.ClientConn
	client kservepb.GRPCInferenceServiceClient
	stop   func() error
}

// serveBoth starts ServeAll; with pool (the test CA) the clients speak TLS.
func serveBoth(t testing.TB, cfg Config, p predict.Predictor, pool *x509.CertPool, log *slog.Logger) *both {
	t.Helper()
	if log == nil {
		log = quiet()
	}
	s, err := New(cfg, p, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopServe := serveInBackground("ServeAll", func(ctx context.Context) error { return s.ServeAll(ctx, ln, gln) })
	b := &both{s: s, url: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 20 * time.Second}}
	creds := insecure.NewCredentials()
	if pool != nil {
		b.url = "https://" + ln.Addr().String()
		tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
		b.http.Transport = &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
		creds = credentials.NewTLS(tc)
	}
	b.conn, err = grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	b.client = kservepb.NewGRPCInferenceServiceClient(b.conn)
	b.stop = func() error {
		_ = b.conn.Close() // a second Close only returns an error
		return stopServe()
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "ready", func() bool { return s.ready.Load() })
	return b
}

func tensorRequest(images []float32, n, size int, raw bool) *kservepb.ModelInferRequest {
	in := &kservepb.ModelInferRequest_InferInputTensor{Name: spec.InputName, Datatype: "FP32", Shape: []int64{int64(n), 3, int64(size), int64(size)}}
	req := &kservepb.ModelInferRequest{ModelName: ModelName, Id: "req-1", Inputs: []*kservepb.ModelInferRequest_InferInputTensor{in}}
	if raw {
		req.RawInputContents = [][]byte{rawFloats(images)}
	} else {
		in.Contents = &kservepb.InferTensorContents{Fp32Contents: images}
	}
	return req
}

// outputsOf returns the response's tensors by name, from typed or raw contents.
func outputsOf(t testing.TB, r *kservepb.ModelInferResponse) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for i, o := range r.GetOutputs() {
		if o.GetDatatype() != "FP32" || len(o.GetShape()) != 2 {
			t.Fatalf("output %s: %s %v", o.GetName(), o.GetDatatype(), o.GetShape())
		}
		v := o.GetContents().GetFp32Contents()
		if len(r.GetRawOutputContents()) > 0 {
			b := r.GetRawOutputContents()[i]
			v = make([]float32, len(b)/4)
			for j := range v {
				v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
			}
		}
		if int64(len(v)) != o.GetShape()[0]*o.GetShape()[1] {
			t.Fatalf("output %s: %d values for shape %v", o.GetName(), len(v), o.GetShape())
		}
		out[o.GetName()] = v
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// The gRPC service answers the v2 calls, and ModelInfer (typed and raw) equals the REST
// answer for the same tensor.
func TestGRPCMatchesHTTP(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 4 << 20
	b := serveBoth(t, cfg, m, nil, nil)
	ctx := context.Background()
	if r, err := b.client.ServerLive(ctx, &kservepb.ServerLiveRequest{}); err != nil || !r.GetLive() {
		t.Fatalf("ServerLive: %v %v", r, err)
	}
	if r, err := b.client.ServerReady(ctx, &kservepb.ServerReadyRequest{}); err != nil || !r.GetReady() {
		t.Fatalf("ServerReady: %v %v", r, err)
	}
	if r, err := b.client.ModelReady(ctx, &kservepb.ModelReadyRequest{Name: ModelName}); err != nil || !r.GetReady() {
		t.Fatalf("ModelReady: %v %v", r, err)
	}
	if _, err := b.client.ModelReady(ctx, &kservepb.ModelReadyRequest{Name: "other"}); status.Code(err) != codes.NotFound {
		t.Fatalf("ModelReady(other): %v, want NotFound", err)
	}
	md, err := b.client.ModelMetadata(ctx, &kservepb.ModelMetadataRequest{Name: ModelName})
	if err != nil {
		t.Fatal(err)
	}
	want := b.s.Metadata()
	if md.GetName() != want.Name || len(md.GetInputs()) != len(want.Inputs) || len(md.GetOutputs()) != len(want.Outputs) || fmt.Sprint(md.GetVersions()) != "[1]" {
		t.Fatalf("ModelMetadata %v, want %+v", md, want)
	}
	for i, o := range md.GetOutputs() {
		if o.GetName() != want.Outputs[i].Name || o.GetShape()[1] != int64(want.Outputs[i].Shape[1]) {
			t.Errorf("output %d: %v, want %+v", i, o, want.Outputs[i])
		}
	}
	sm, err := b.client.ServerMetadata(ctx, &kservepb.ServerMetadataRequest{})
	if err != nil || sm.GetName() != "artnet" {
		t.Fatalf("ServerMetadata: %v %v", sm, err)
	}

	size := spec.Tiny().ImageSize
	images := runtimetest.Images(3, size, 7)
	var rest InferResponse
	if resp, body := post(t, b.url+"/v2/models/artnet/infer", "application/json", inferBody(t, []int{3, 3, size, size}, images, ""), &rest); resp.StatusCode != 200 {
		t.Fatalf("REST infer: %d %s", resp.StatusCode, body)
	}
	for _, raw := range []bool{false, true} {
		r, err := b.client.ModelInfer(ctx, tensorRequest(images, 3, size, raw))
		if err != nil {
			t.Fatalf("raw=%v: %v", raw, err)
		}
		if r.GetId() != "req-1" || r.GetModelName() != ModelName || r.GetModelVersion() != "1" {
			t.Errorf("raw=%v: id %q model %q version %q", raw, r.GetId(), r.GetModelName(), r.GetModelVersion())
		}
		if got := len(r.GetRawOutputContents()) > 0; got != raw {
			t.Errorf("raw=%v: answered raw=%v", raw, got)
		}
		outs := outputsOf(t, r)
		if len(outs) != len(rest.Outputs) {
			t.Fatalf("raw=%v: %d outputs, REST %d", raw, len(outs), len(rest.Outputs))
		}
		for _, o := range rest.Outputs {
			if d := maxDiff(outs[o.Name], o.Data); d > 1e-5 {
				t.Errorf("raw=%v: output %s differs from REST by %g", raw, o.Name, d)
			}
		}
	}
	// Selected outputs, in the order asked.
	req := tensorRequest(images[:3*size*size], 1, size, false)
	req.Outputs = []*kservepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "genre"}, {Name: "style"}}
	r, err := b.client.ModelInfer(ctx, req)
	if err != nil || len(r.GetOutputs()) != 2 || r.GetOutputs()[0].GetName() != "genre" {
		t.Fatalf("selected outputs: %v %v", r, err)
	}
}

// image_bytes: encoded files, typed and raw (length-prefixed), decoded server-side like
// /v1/predict's uploads.
func TestGRPCImageBytes(t *testing.T) {
	m := tinyModel(t)
	b := serveBoth(t, testConfig(), m, nil, nil)
	files := [][]byte{jpegBytes(t, picture(120, 90, 1)), pngBytes(t, picture(70, 100, 2))}
	for _, raw := range []bool{false, true} {
		in := &kservepb.ModelInferRequest_InferInputTensor{Name: InputBytesName, Datatype: "BYTES", Shape: []int64{2}}
		req := &kservepb.ModelInferRequest{ModelName: ModelName, Inputs: []*kservepb.ModelInferRequest_InferInputTensor{in}}
		if raw {
			var buf bytes.Buffer
			for _, f := range files {
				_ = binary.Write(&buf, binary.LittleEndian, uint32(len(f)))
				buf.Write(f)
			}
			req.RawInputContents = [][]byte{buf.Bytes()}
		} else {
			in.Contents = &kservepb.InferTensorContents{BytesContents: files}
		}
		r, err := b.client.ModelInfer(context.Background(), req)
		if err != nil {
			t.Fatalf("raw=%v: %v", raw, err)
		}
		outs := outputsOf(t, r)
		for i, f := range files {
			want := ranAlone(t, m, f)
			for _, task := range spec.Tasks {
				w := len(outs[task]) / 2
				if d := maxDiff(outs[task][i*w:(i+1)*w], want.Probs[task]); d > 1e-5 {
					t.Errorf("raw=%v file %d %s: differs from decoding it alone by %g", raw, i, task, d)
				}
			}
		}
	}
	// A broken file is refused with its index named.
	in := &kservepb.ModelInferRequest_InferInputTensor{Name: InputBytesName, Datatype: "BYTES", Shape: []int64{2},
		Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{files[0], []byte("not an image")}}}
	_, err := b.client.ModelInfer(context.Background(), &kservepb.ModelInferRequest{ModelName: ModelName, Inputs: []*kservepb.ModelInferRequest_InferInputTensor{in}})
	if status.Code(err) != codes.InvalidArgument || !bytes.Contains([]byte(err.Error()), []byte("image_bytes[1]")) {
		t.Errorf("broken file: %v, want InvalidArgument naming image_bytes[1]", err)
	}
}

// Malformed and oversized requests get the right status; the server keeps serving.
func TestGRPCBadRequests(t *testing.T) {
	cfg := testConfig()
	b := serveBoth(t, cfg, tinyModel(t), nil, nil)
	size := spec.Tiny().ImageSize
	good := func() *kservepb.ModelInferRequest {
		return tensorRequest(runtimetest.Images(1, size, 1), 1, size, false)
	}
	cases := []struct {
		name string
		edit func(*kservepb.ModelInferRequest)
		code codes.Code
	}{
		{"other model", func(r *kservepb.ModelInferRequest) { r.ModelName = "resnet" }, codes.NotFound},
		{"other version", func(r *kservepb.ModelInferRequest) { r.ModelVersion = "7" }, codes.NotFound},
		{"no input", func(r *kservepb.ModelInferRequest) { r.Inputs = nil }, codes.InvalidArgument},
		{"wrong shape", func(r *kservepb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 3, 8, 8} }, codes.InvalidArgument},
		{"wrong datatype", func(r *kservepb.ModelInferRequest) { r.Inputs[0].Datatype = "FP16" }, codes.InvalidArgument},
		{"short data", func(r *kservepb.ModelInferRequest) {
			r.Inputs[0].Contents.Fp32Contents = r.Inputs[0].Contents.Fp32Contents[1:]
		}, codes.InvalidArgument},
		{"batch too large", func(r *kservepb.ModelInferRequest) { r.Inputs[0].Shape[0] = 1000 }, codes.InvalidArgument},
		{"unknown output", func(r *kservepb.ModelInferRequest) {
			r.Outputs = []*kservepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}
		}, codes.InvalidArgument},
		{"raw and typed", func(r *kservepb.ModelInferRequest) { r.RawInputContents = [][]byte{{1, 2, 3, 4}} }, codes.InvalidArgument},
		{"oversized", func(r *kservepb.ModelInferRequest) {
			r.Inputs[0].Contents.Fp32Contents = make([]float32, cfg.MaxBodyBytes/4+16)
		}, codes.ResourceExhausted},
	}
	for _, c := range cases {
		req := good()
		c.edit(req)
		_, err := b.client.ModelInfer(context.Background(), req)
		if status.Code(err) != c.code {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
		}
	}
	// Bytes that are no protobuf message.
	err := b.conn.Invoke(context.Background(), grpcService+"ModelInfer", []byte{0xff, 0xff, 0xff}, new([]byte), grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.Internal && status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage message: %v, want Internal (grpc-go's unmarshal error) or InvalidArgument", err)
	}
	if _, err := b.client.ModelInfer(context.Background(), good()); err != nil {
		t.Fatalf("a good request after the bad ones: %v", err)
	}
}

// selfSigned writes a certificate for localhost (testcert.Write).
func selfSigned(t testing.TB, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	return testcert.Write(t, dir, name)
}

// rawCodec sends and receives bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }
