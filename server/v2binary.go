package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/artnet/artnet/models/spec"
)

// The v2 binary tensor data extension (Triton's), for POST /v2/models/artnet/infer: the body
// is a JSON header of Inference-Header-Content-Length bytes followed by the input's bytes,
// with "parameters": {"binary_data_size": N} on the input. This is how encoded image files
// travel over HTTP — image_bytes, BYTES [B], each element a 4-byte little-endian length and
// the file, as in gRPC's raw_input_contents — and it also takes the FP32 image tensor as
// little-endian floats. The answer is the usual JSON.

// maxBinaryHeader caps the JSON header of a binary request.
const maxBinaryHeader = 64 << 10

type binaryHeader struct {
	ID     string `json:"id"`
	Inputs []struct {
		Name       string  `json:"name"`
		Datatype   string  `json:"datatype"`
		Shape      []int64 `json:"shape"`
		Parameters struct {
			BinaryDataSize *int64 `json:"binary_data_size"`
		} `json:"parameters"`
	} `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs"`
}

// inferBinary runs a request of the binary data extension: the whole body is read (reserved
// as it arrives), the header checked, image files decoded, the tensor run.
func (s *Server) inferBinary(w http.ResponseWriter, r *http.Request, hlen string) (*InferResponse, error) {
	n, err := strconv.ParseInt(hlen, 10, 64)
	if err != nil || n < 2 || n > maxBinaryHeader {
		return nil, clientErr(http.StatusBadRequest, "header Inference-Header-Content-Length: %q is not a length in 2..%d", hlen, maxBinaryHeader)
	}
	ctx := r.Context()
	body, err := s.startBody(w, r)
	if err != nil {
		return nil, err
	}
	defer body.done()
	arr := s.b.arriving()
	defer arr.cancel()
	_, sp := s.stage(ctx, "receive body")
	data, err := body.readAll(ctx, body.body, r.ContentLength)
	body.endRead()
	endStage(sp, err)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) < n {
		return nil, clientErr(http.StatusBadRequest, "body of %d bytes is shorter than its Inference-Header-Content-Length %d", len(data), n)
	}
	var h binaryHeader
	dec := json.NewDecoder(bytes.NewReader(data[:n]))
	if err := dec.Decode(&h); err != nil {
		return nil, clientErr(http.StatusBadRequest, "request JSON header: %v", err)
	}
	rest := data[n:]
	req, err := checkBinary(&h, rest, s.mcfg.ImageSize, s.cfg.MaxInferBatch)
	if err != nil {
		return nil, err
	}
	outs, err := s.selectOutputs(req.outputs)
	if err != nil {
		return nil, err
	}
	images := req.data
	if req.files != nil {
		if images, err = s.decodeImages(ctx, body.mem, req.files); err != nil {
			return nil, err
		}
	}
	res, version, err := s.b.doVersion(ctx, images, req.n, arr)
	if err != nil {
		return nil, err
	}
	resp := &InferResponse{ModelName: ModelName, ModelVersion: version, ID: h.ID}
	for _, name := range outs {
		v := res.Output(name)
		resp.Outputs = append(resp.Outputs, InferOutput{Name: name, Datatype: "FP32", Shape: []int{req.n, len(v) / req.n}, Data: v})
	}
	return resp, nil
}

// checkBinary checks the header of a binary request and splits its data; it reuses the gRPC
// request's checks (the same input contract).
func checkBinary(h *binaryHeader, rest []byte, size, maxBatch int) (*grpcInfer, error) {
	if len(h.Inputs) != 1 {
		return nil, clientErr(http.StatusBadRequest, "inputs: want exactly one (%q or %q), got %d", spec.InputName, InputBytesName, len(h.Inputs))
	}
	in := h.Inputs[0]
	if bs := in.Parameters.BinaryDataSize; bs == nil || *bs != int64(len(rest)) {
		return nil, clientErr(http.StatusBadRequest, "input %q: parameters.binary_data_size must be the %d bytes after the JSON header", in.Name, len(rest))
	}
	g := &grpcInfer{}
	for _, o := range h.Outputs {
		g.outputs = append(g.outputs, o.Name)
	}
	switch in.Name {
	case spec.InputName:
		if in.Datatype != "FP32" || len(in.Shape) != 4 || in.Shape[1] != 3 || in.Shape[2] != int64(size) || in.Shape[3] != int64(size) || in.Shape[0] < 1 || in.Shape[0] > int64(maxBatch) {
			return nil, clientErr(http.StatusBadRequest, "input %q: %s %v, want FP32 [B,3,%d,%d] with B in 1..%d", in.Name, in.Datatype, in.Shape, size, size, maxBatch)
		}
		g.n = int(in.Shape[0])
		want := g.n * 3 * size * size
		if len(rest) != 4*want {
			return nil, clientErr(http.StatusBadRequest, "input %q: %d bytes of data, shape %v needs %d", in.Name, len(rest), in.Shape, 4*want)
		}
		g.data = make([]float32, want)
		for i := range g.data {
			g.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:]))
		}
	case InputBytesName:
		if in.Datatype != "BYTES" || len(in.Shape) != 1 || in.Shape[0] < 1 || in.Shape[0] > int64(maxBatch) {
			return nil, clientErr(http.StatusBadRequest, "input %q: %s %v, want BYTES [B] with B in 1..%d", in.Name, in.Datatype, in.Shape, maxBatch)
		}
		g.n = int(in.Shape[0])
		files, err := splitRawBytes(rest, g.n, "binary data of "+InputBytesName)
		if err != nil {
			return nil, err
		}
		g.files = files
	default:
		return nil, clientErr(http.StatusBadRequest, "input %q: the model's inputs are %q (FP32) and %q (BYTES)", in.Name, spec.InputName, InputBytesName)
	}
	return g, nil
}
