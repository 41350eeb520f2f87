package server

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/server/kservepb"
)

// FuzzGRPCInfer feeds arbitrary protobuf bytes as ModelInferRequest messages through the gRPC
// handler (parsing, raw and typed contents, BYTES splitting, image decoding, batching): each
// message that grpc-go would decode must be answered, or refused with a client status —
// never INTERNAL, never a panic — and no queue slot or memory may leak. Seeded with good
// requests of every form.
func FuzzGRPCInfer(f *testing.F) {
	size := spec.Tiny().ImageSize
	img := runtimetest.Images(1, size, 9)
	png := pngBytes(f, picture(40, 40, 1))
	seeds := []*kservepb.ModelInferRequest{
		tensorRequest(img, 1, size, false), tensorRequest(img, 1, size, true),
		{ModelName: ModelName, Inputs: []*kservepb.ModelInferRequest_InferInputTensor{{Name: InputBytesName, Datatype: "BYTES", Shape: []int64{1},
			Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{png}}}}},
		{ModelName: ModelName, Inputs: []*kservepb.ModelInferRequest_InferInputTensor{{Name: InputBytesName, Datatype: "BYTES", Shape: []int64{1}}},
			RawInputContents: [][]byte{lengthPrefixed(png)}},
	}
	for _, r := range seeds {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := testConfig()
	cfg.MaxPixels = 1 << 20
	cfg.MaxDelay = 0
	s, err := New(cfg, tinyModel(f), quiet())
	if err != nil {
		f.Fatal(err)
	}
	s.b.start(1)
	f.Cleanup(s.b.close)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var req kservepb.ModelInferRequest
		if proto.Unmarshal(msg, &req) != nil {
			return // grpc-go refuses it before the handler
		}
		resp, err := s.inferGRPC(context.Background(), &req)
		if err != nil {
			st := grpcStatus(context.Background(), err)
			switch status.Code(st) {
			case codes.InvalidArgument, codes.NotFound, codes.ResourceExhausted:
			default:
				t.Fatalf("status %v for a client's message", st)
			}
		} else if len(resp.GetOutputs()) == 0 {
			t.Fatalf("answered without outputs")
		}
		if p := s.b.pending.Load(); p != 0 {
			t.Fatalf("queue slot leaked: pending %d", p)
		}
		if u := s.mem.inUse(); u != 0 {
			t.Fatalf("memory reservation leaked: %d bytes", u)
		}
	})
}

// FuzzSplitRawBytes: the BYTES splitter never panics, and what it returns is exactly n
// elements that re-encode to its input.
func FuzzSplitRawBytes(f *testing.F) {
	f.Add(lengthPrefixed([]byte("ab"), []byte("")), 2)
	f.Add([]byte{1, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		out, err := splitRawBytes(b, n, "x")
		if err != nil {
			return
		}
		if len(out) != n || string(lengthPrefixed(out...)) != string(b) {
			t.Fatalf("split %q into %d elements %q", b, n, out)
		}
	})
}
