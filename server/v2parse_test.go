package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The seeds' model: 2×2 inputs, batches of up to 4.
const fuzzSize, fuzzMaxBatch = 2, 4

func parseSeed(t testing.TB, body []byte) (*v2Request, int64, error) {
	t.Helper()
	var reserved int64
	req, err := parseV2(bytes.NewReader(body), fuzzSize, fuzzMaxBatch,
		func(n int64) error { reserved += n; return nil },
		func(err error) error { return clientErr(http.StatusBadRequest, "reading: %v", err) })
	return req, reserved, err
}

// refParse is the reference: encoding/json's Unmarshal of the whole body, the data flattened
// recursively (float32 from the decimal text, as parseV2 does).
func refParse(body []byte) (*v2Request, error) {
	var req InferRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if len(req.Inputs) != 1 {
		return nil, fmt.Errorf("%d inputs", len(req.Inputs))
	}
	in := req.Inputs[0]
	out := &v2Request{ID: req.ID, Name: in.Name, Datatype: in.Datatype, Shape: in.Shape}
	for _, o := range req.Outputs {
		out.Outputs = append(out.Outputs, o.Name)
	}
	dec := json.NewDecoder(bytes.NewReader(in.Data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
			return nil
		case json.Number:
			if depth == 0 {
				return errors.New("not an array")
			}
			f, err := strconv.ParseFloat(string(x), 32)
			if err != nil {
				return err
			}
			out.Data = append(out.Data, float32(f))
			return nil
		}
		return fmt.Errorf("%T in data", v)
	}
	return out, walk(v, 0)
}

func TestV2ParseSeeds(t *testing.T) {
	for name, want := range map[string]string{
		"flat.json": "", "nested.json": "", "data-first.json": "",
		"too-many.json": "more than the 12 values", "batch-too-large.json": "batch 9", "bad.json": `datatype "INT8"`,
	} {
		body, err := os.ReadFile(filepath.Join("../testdata/v2", name))
		if err != nil {
			t.Fatal(err)
		}
		req, reserved, err := parseSeed(t, body)
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one mentioning %q", name, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		ref, err := refParse(body)
		if err != nil {
			t.Fatalf("%s: reference: %v", name, err)
		}
		if !reflect.DeepEqual(req.Data, ref.Data) || !reflect.DeepEqual(req.Shape, ref.Shape) || req.ID != ref.ID || !reflect.DeepEqual(req.Outputs, ref.Outputs) {
			t.Errorf("%s: parsed %+v, reference %+v", name, req, ref)
		}
		if reserved != int64(len(req.Data))*4 {
			t.Errorf("%s: reserved %d bytes for %d values", name, reserved, len(req.Data))
		}
	}
}

// FuzzV2Parse: the stream parser never panics; what it accepts, encoding/json reads the
// same (values, shape, id, outputs) and it is a valid request; its reservations cover its
// data and stay within the largest batch.
func FuzzV2Parse(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/v2/*.json")
	if len(seeds) == 0 {
		f.Fatal("no seeds in ../testdata/v2")
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reserved, err := parseSeed(t, body)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.code != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		per := 3 * fuzzSize * fuzzSize
		if len(req.Shape) != 4 || req.Shape[0] < 1 || req.Shape[0] > fuzzMaxBatch || len(req.Data) != req.Shape[0]*per || req.Name != "image" || req.Datatype != "FP32" {
			t.Fatalf("accepted an invalid request %+v", req)
		}
		if reserved < int64(len(req.Data))*4 || reserved > int64(fuzzMaxBatch*per)*4 {
			t.Fatalf("reserved %d bytes for %d values", reserved, len(req.Data))
		}
		if foldedKeys(body) {
			return // encoding/json matches keys case-insensitively; the protocol does not
		}
		ref, err := refParse(body)
		if err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, body)
		}
		if !reflect.DeepEqual(req.Data, ref.Data) || !reflect.DeepEqual(req.Shape, ref.Shape) || req.ID != ref.ID || !reflect.DeepEqual(req.Outputs, ref.Outputs) {
			t.Fatalf("parsed %+v, encoding/json %+v", req, ref)
		}
	})
}

// foldedKeys reports whether body has an object key that matches a field of the protocol
// only case-insensitively ("ID", "Data"), where encoding/json and the protocol differ.
func foldedKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		k, ok := t.(string)
		if !ok {
			continue
		}
		for _, f := range []string{"id", "inputs", "outputs", "name", "shape", "datatype", "data", "parameters"} {
			if k != f && strings.EqualFold(k, f) {
				return true
			}
		}
	}
}
