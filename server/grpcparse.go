package server

import (
	"encoding/binary"
	"math"
	"net/http"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/server/kservepb"
)

// InputBytesName is the BYTES input that takes encoded image files (JPEG, PNG, WebP, GIF), one
// per element of its shape [B]; the server decodes and preprocesses them as /v1/predict does.
const InputBytesName = "image_bytes"

// grpcInfer is a checked gRPC ModelInfer request: either images (FP32, B×3×S×S) or files
// (encoded images), never both.
type grpcInfer struct {
	n       int
	data    []float32
	files   [][]byte
	outputs []string
	raw     bool // the request used raw_input_contents: the answer uses raw_output_contents
}

// parseGRPCInfer checks a ModelInferRequest for a model with size×size inputs served at
// version (the request may name it or leave it empty), and returns its input. FP32 data given
// as fp32_contents are used in place; raw contents (little-endian, as the protocol says) are
// converted. Errors are httpErrors naming the field (400, 404 for another model or version).
func parseGRPCInfer(req *kservepb.ModelInferRequest, size, maxBatch int, version string) (*grpcInfer, error) {
	switch {
	case req.GetModelName() != ModelName:
		return nil, clientErr(http.StatusNotFound, "model_name %q: this server serves %q", req.GetModelName(), ModelName)
	case req.GetModelVersion() != "" && req.GetModelVersion() != version:
		return nil, clientErr(http.StatusNotFound, "model_version %q: this server serves version %q", req.GetModelVersion(), version)
	case len(req.GetInputs()) != 1:
		return nil, clientErr(http.StatusBadRequest, "inputs: want exactly one (%q or %q), got %d", spec.InputName, InputBytesName, len(req.GetInputs()))
	case len(req.GetRawInputContents()) > 1:
		return nil, clientErr(http.StatusBadRequest, "raw_input_contents: %d entries for 1 input", len(req.GetRawInputContents()))
	}
	in := req.GetInputs()[0]
	raw := len(req.GetRawInputContents()) == 1
	if raw && in.GetContents() != nil {
		return nil, clientErr(http.StatusBadRequest, "input %q: contents and raw_input_contents both given", in.GetName())
	}
	g := &grpcInfer{raw: raw}
	for _, o := range req.GetOutputs() {
		g.outputs = append(g.outputs, o.GetName())
	}
	shape := in.GetShape()
	switch in.GetName() {
	case spec.InputName:
		if in.GetDatatype() != "FP32" {
			return nil, clientErr(http.StatusBadRequest, "input %q: datatype %q, want \"FP32\"", in.GetName(), in.GetDatatype())
		}
		if len(shape) != 4 || shape[1] != 3 || shape[2] != int64(size) || shape[3] != int64(size) {
			return nil, clientErr(http.StatusBadRequest, "input %q: shape %v, want [B,3,%d,%d]", in.GetName(), shape, size, size)
		}
		if shape[0] < 1 || shape[0] > int64(maxBatch) {
			return nil, clientErr(http.StatusBadRequest, "input %q: batch %d, want 1..%d", in.GetName(), shape[0], maxBatch)
		}
		g.n = int(shape[0])
		want := g.n * 3 * size * size
		if raw {
			b := req.GetRawInputContents()[0]
			if len(b) != want*4 {
				return nil, clientErr(http.StatusBadRequest, "raw_input_contents[0]: %d bytes, shape %v needs %d (FP32)", len(b), shape, want*4)
			}
			g.data = make([]float32, want)
			for i := range g.data {
				g.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		} else {
			g.data = in.GetContents().GetFp32Contents()
			if len(g.data) != want {
				return nil, clientErr(http.StatusBadRequest, "input %q: contents.fp32_contents has %d values, shape %v needs %d", in.GetName(), len(g.data), shape, want)
			}
		}
	case InputBytesName:
		if in.GetDatatype() != "BYTES" {
			return nil, clientErr(http.StatusBadRequest, "input %q: datatype %q, want \"BYTES\"", in.GetName(), in.GetDatatype())
		}
		if len(shape) != 1 || shape[0] < 1 || shape[0] > int64(maxBatch) {
			return nil, clientErr(http.StatusBadRequest, "input %q: shape %v, want [B] with B in 1..%d", in.GetName(), shape, maxBatch)
		}
		g.n = int(shape[0])
		if raw {
			files, err := splitRawBytes(req.GetRawInputContents()[0], g.n, "raw_input_contents[0]")
			if err != nil {
				return nil, err
			}
			g.files = files
		} else {
			g.files = in.GetContents().GetBytesContents()
			if len(g.files) != g.n {
				return nil, clientErr(http.StatusBadRequest, "input %q: contents.bytes_contents has %d elements, shape %v needs %d", in.GetName(), len(g.files), shape, g.n)
			}
		}
	default:
		return nil, clientErr(http.StatusBadRequest, "input %q: the model's inputs are %q (FP32) and %q (BYTES)", in.GetName(), spec.InputName, InputBytesName)
	}
	return g, nil
}

// splitRawBytes splits the raw contents of a BYTES tensor — each element a 4-byte
// little-endian length and that many bytes (Triton's serialization) — into n elements.
func splitRawBytes(b []byte, n int, field string) ([][]byte, error) {
	if n < 1 {
		return nil, clientErr(http.StatusBadRequest, "%s: %d BYTES elements: want at least 1", field, n)
	}
	out := make([][]byte, 0, min(n, len(b)/4+1))
	for len(b) > 0 {
		if len(out) == n {
			return nil, clientErr(http.StatusBadRequest, "%s: more than the %d BYTES elements the shape says", field, n)
		}
		if len(b) < 4 {
			return nil, clientErr(http.StatusBadRequest, "%s: element %d: %d bytes left, too few for its 4-byte length", field, len(out), len(b))
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil, clientErr(http.StatusBadRequest, "%s: element %d: length %d, only %d bytes left", field, len(out), l, len(b)-4)
		}
		out = append(out, b[4:4+l:4+l])
		b = b[4+l:]
	}
	if len(out) != n {
		return nil, clientErr(http.StatusBadRequest, "%s: %d BYTES elements, the shape says %d", field, len(out), n)
	}
	return out, nil
}

// rawFloats is v as little-endian FP32 bytes (raw_output_contents).
func rawFloats(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
