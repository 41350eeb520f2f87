package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/artnet/artnet/models/spec"
)

// The v2 infer body is parsed as a stream, never held whole: encoding/json's Decoder reads
// the structure token by token; the image data (the bulk: up to MaxInferBatch×3×H×W
// numbers) are scanned by scanData straight into a float32 slice whose size comes from the
// shape, because the Decoder's Token allocates per value (9 MB/s measured on the shared
// 2-core VM, against ~10× that for the scanner). The batch is checked against MaxInferBatch
// from the shape before any data is read, and parsing stops at the first value past the
// shape's element count (or past the largest batch when the data come before the shape) or
// at the body cap. Memory is reserved from the budget before the slice grows. FuzzV2Parse
// checks the result against encoding/json's.

// maxPendingJSON bounds the bytes the decoder may buffer for one token (an id string, a
// number): a longer token is refused instead of buffered.
const maxPendingJSON = 1 << 20

// maxJSONDepth bounds nesting: the data array has at most 4 levels, other values (skipped)
// at most this many; the decoder keeps a stack entry per open bracket.
const maxJSONDepth = 32

var errTokenTooLong = fmt.Errorf("a JSON token longer than %d bytes", maxPendingJSON)

// v2Request is a parsed infer request.
type v2Request struct {
	ID       string
	Name     string
	Datatype string
	Shape    []int
	Data     []float32
	Outputs  []string
	inputs   int
	hasData  bool
}

// v2Parser reads one infer request from r.
type v2Parser struct {
	dec      *json.Decoder
	g        *pendingGuard
	size     int // the model's input side
	maxBatch int
	// reserve charges n more bytes to the request's memory; an error stops parsing.
	reserve func(n int64) error
	readErr func(error) error // classifies the body reader's errors
}

// pendingGuard refuses to feed the decoder while it holds more than maxPendingJSON
// unconsumed bytes: a single token that long. base is the length of a synthetic prefix the
// decoder read before the guard (see resume).
type pendingGuard struct {
	r    io.Reader
	dec  *json.Decoder
	base int64
	read int64
}

func (g *pendingGuard) Read(p []byte) (int, error) {
	if g.dec != nil && g.read-(g.dec.InputOffset()-g.base) > maxPendingJSON {
		return 0, errTokenTooLong
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	return n, err
}

// decode starts a decoder reading prefix, then r.
func (p *v2Parser) decode(prefix string, r io.Reader) {
	p.g = &pendingGuard{r: r, base: int64(len(prefix))}
	p.dec = json.NewDecoder(io.MultiReader(strings.NewReader(prefix), p.g))
	p.g.dec = p.dec
	p.dec.UseNumber()
}

// parseV2 parses an infer request for a model with size×size inputs. Errors are httpErrors
// (400 with the field named) or the body reader's own errors (size cap, rate, memory).
func parseV2(r io.Reader, size, maxBatch int, reserve func(int64) error, readErr func(error) error) (*v2Request, error) {
	p := &v2Parser{size: size, maxBatch: maxBatch, reserve: reserve, readErr: readErr}
	p.decode("", r)
	req := &v2Request{}
	if err := p.object(func(key string) error { return p.topField(req, key) }); err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		if err == nil {
			return nil, clientErr(http.StatusBadRequest, "request JSON: data after the top-level object")
		}
		return nil, p.jsonErr(err)
	}
	if err := p.check(req, true); err != nil {
		return nil, err
	}
	return req, nil
}

// jsonErr words the decoder's errors (syntax, early end, an overlong token) as 400s and
// hands the body reader's (size cap, rate, connection) to readErr.
func (p *v2Parser) jsonErr(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se), errors.Is(err, errTokenTooLong):
		return clientErr(http.StatusBadRequest, "request JSON: %v", err)
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		return clientErr(http.StatusBadRequest, "request JSON: %v", io.ErrUnexpectedEOF)
	}
	return p.readErr(err)
}

func (p *v2Parser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		return nil, p.jsonErr(err)
	}
	return t, nil
}

// object reads an object, calling field for each key (the decoder then stands before its
// value, which field must consume).
func (p *v2Parser) object(field func(key string) error) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return clientErr(http.StatusBadRequest, "request JSON: want an object, found %v", describeToken(t))
	}
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return err
		}
		if err := field(t.(string)); err != nil {
			return err
		}
	}
	_, err = p.token() // '}'
	return err
}

// array reads an array, calling elem before each element (which elem must consume).
func (p *v2Parser) array(what string, elem func() error) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return clientErr(http.StatusBadRequest, "%s: want an array, found %v", what, describeToken(t))
	}
	for p.dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err = p.token() // ']'
	return err
}

func (p *v2Parser) str(what string) (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", clientErr(http.StatusBadRequest, "%s: want a string, found %v", what, describeToken(t))
	}
	return s, nil
}

// skip consumes one value of any kind, token by token.
func (p *v2Parser) skip() error {
	depth := 0
	for {
		t, err := p.token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '[' || d == '{' {
				depth++
				if depth > maxJSONDepth {
					return clientErr(http.StatusBadRequest, "request JSON: nested deeper than %d", maxJSONDepth)
				}
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func (p *v2Parser) topField(req *v2Request, key string) error {
	switch key {
	case "id":
		s, err := p.str("id")
		req.ID = s
		return err
	case "inputs":
		return p.array("inputs", func() error {
			req.inputs++
			if req.inputs > 1 {
				return clientErr(http.StatusBadRequest, "want exactly one input (%q), got more", spec.InputName)
			}
			return p.object(func(key string) error { return p.inputField(req, key) })
		})
	case "outputs":
		req.Outputs = nil // a repeated key replaces, as in encoding/json
		return p.array("outputs", func() error {
			var name string
			err := p.object(func(key string) error {
				if key != "name" {
					return p.skip()
				}
				s, err := p.str("outputs: name")
				name = s
				return err
			})
			req.Outputs = append(req.Outputs, name)
			return err
		})
	default: // parameters, and fields of later protocol versions
		return p.skip()
	}
}

func (p *v2Parser) inputField(req *v2Request, key string) error {
	var err error
	switch key {
	case "name":
		req.Name, err = p.str("input: name")
	case "datatype":
		req.Datatype, err = p.str(inputField + ": datatype")
	case "shape":
		req.Shape = []int{}
		err = p.array(inputField+": shape", func() error {
			t, err := p.token()
			if err != nil {
				return err
			}
			n, ok := t.(json.Number)
			v, perr := strconv.Atoi(string(n))
			if !ok || perr != nil || len(req.Shape) >= 8 {
				return inputErr(`shape: want up to 8 integers, found %v`, describeToken(t))
			}
			req.Shape = append(req.Shape, v)
			return nil
		})
	case "data":
		if req.hasData {
			return inputErr(`data given twice`)
		}
		req.hasData = true
		if err := p.check(req, false); err != nil { // what is known so far, before reading any data
			return err
		}
		err = p.data(req)
	default:
		err = p.skip()
	}
	return err
}

// check validates the input; with final false only the fields seen so far.
func (p *v2Parser) check(req *v2Request, final bool) error {
	size := p.size
	switch {
	case final && req.inputs != 1:
		return clientErr(http.StatusBadRequest, "want exactly one input (%q), got %d", spec.InputName, req.inputs)
	case (final || req.Name != "") && req.Name != spec.InputName:
		return clientErr(http.StatusBadRequest, "input %q: the model's input is %q", req.Name, spec.InputName)
	case (final || req.Datatype != "") && req.Datatype != "FP32":
		return inputErr(`datatype %q, want "FP32"`, req.Datatype)
	case (final || req.Shape != nil) && (len(req.Shape) != 4 || req.Shape[1] != 3 || req.Shape[2] != size || req.Shape[3] != size):
		return inputErr(`shape %v, want [B,3,%d,%d]`, req.Shape, size, size)
	case req.Shape != nil && (req.Shape[0] < 1 || req.Shape[0] > p.maxBatch):
		return inputErr(`batch %d, want 1..%d`, req.Shape[0], p.maxBatch)
	case final && !req.hasData:
		return inputErr(`data: missing`)
	case final && len(req.Data) != req.Shape[0]*3*size*size:
		return inputErr(`data has %d values, shape %v needs %d`, len(req.Data), req.Shape, req.Shape[0]*3*size*size)
	}
	return nil
}

// data reads the value of "data" — a flat or nested (row-major) array of numbers — into
// req.Data: at most the shape's element count (the largest batch's when no shape has been
// seen), reserving the slice's memory before it grows. The decoder stands before the ':' of
// the key; scanData reads on from its buffer and the body, and a new decoder resumes after
// the array in the same place of the document (one input, so always inputs[0].data).
func (p *v2Parser) data(req *v2Request) error {
	per := 3 * p.size * p.size
	limit, chunk := p.maxBatch*per, per
	if req.Shape != nil {
		limit, chunk = req.Shape[0]*per, req.Shape[0]*per
	}
	rest := p.g.r
	br := bufio.NewReaderSize(io.MultiReader(p.dec.Buffered(), rest), 64<<10)
	err := scanData(br, func(f float32) error {
		if len(req.Data) == cap(req.Data) {
			if len(req.Data) == limit {
				return inputErr(`data: more than the %d values the shape needs`, limit)
			}
			grow := min(chunk, limit-len(req.Data))
			if err := p.reserve(int64(grow) * 4); err != nil {
				return err
			}
			nd := make([]float32, len(req.Data), len(req.Data)+grow)
			copy(nd, req.Data)
			req.Data = nd
		}
		req.Data = append(req.Data, f)
		return nil
	})
	if err != nil {
		var he *httpError
		if errors.As(err, &he) || errors.Is(err, ErrMemoryBudget) {
			return err
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return clientErr(http.StatusBadRequest, "request JSON: %v", io.ErrUnexpectedEOF)
		}
		return p.readErr(err)
	}
	left, _ := br.Peek(br.Buffered())
	p.decode(`{"inputs":[{"data":0`, io.MultiReader(bytes.NewReader(append([]byte(nil), left...)), rest))
	for i := 0; i < 6; i++ { // { "inputs" [ { "data" 0
		if _, err := p.token(); err != nil {
			return err
		}
	}
	return nil
}

// scanData reads `: [numbers or nested arrays of them]` (JSON's grammar, at most 4 levels)
// from br and calls add for each number, as float32 rounded from its decimal text.
func scanData(br *bufio.Reader, add func(float32) error) error {
	bad := func(format string, args ...any) error {
		return inputErr(`data: `+format, args...)
	}
	skipWS := func() (byte, error) {
		for {
			c, err := br.ReadByte()
			if err != nil {
				return 0, err
			}
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return c, nil
			}
		}
	}
	c, err := skipWS()
	if err != nil {
		return err
	}
	if c != ':' {
		return clientErr(http.StatusBadRequest, "request JSON: invalid character %q after object key", c)
	}
	var num []byte
	depth := 0
	want := "value" // value (after '[' or ','), "next" (after a value: ',' or ']')
	for {
		c, err := skipWS()
		if err != nil {
			return err
		}
		switch {
		case want == "value" && c == '[':
			depth++
			if depth > 4 {
				return bad("nested deeper than the 4 dimensions of the shape")
			}
			if n, err := skipWS(); err != nil {
				return err
			} else if n == ']' {
				depth--
				want = "next"
			} else {
				_ = br.UnreadByte()
			}
		case want == "value" && (c == '-' || (c >= '0' && c <= '9')):
			if depth == 0 {
				return bad("want an array of numbers")
			}
			num = append(num[:0], c)
			for {
				d, err := br.ReadByte()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if (d >= '0' && d <= '9') || d == '.' || d == 'e' || d == 'E' || d == '+' || d == '-' {
					num = append(num, d)
					if len(num) > 1000 {
						return bad("a number longer than 1000 characters")
					}
					continue
				}
				_ = br.UnreadByte()
				break
			}
			if !validNumber(num) {
				return clientErr(http.StatusBadRequest, "request JSON: invalid number %q in data", num)
			}
			f, err := strconv.ParseFloat(string(num), 32)
			if err != nil {
				return bad("value %s is not a float32", num)
			}
			if err := add(float32(f)); err != nil {
				return err
			}
			want = "next"
		case want == "value" && depth == 0 && c == ']':
			return clientErr(http.StatusBadRequest, "request JSON: invalid character ']' looking for beginning of value")
		case want == "value":
			if c == '"' || c == 't' || c == 'f' || c == 'n' || c == '{' {
				return bad("want numbers, found %q", c)
			}
			return clientErr(http.StatusBadRequest, "request JSON: invalid character %q in data", c)
		case c == ',' && depth > 0:
			want = "value"
		case c == ']' && depth > 0:
			depth--
		default:
			return clientErr(http.StatusBadRequest, "request JSON: invalid character %q after an array element", c)
		}
		if depth == 0 && want == "next" {
			return nil
		}
	}
}

// validNumber is JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// inputField names the model's input in parse errors.
var inputField = fmt.Sprintf("input %q", spec.InputName)

// inputErr is a 400 about the model's input: `input "image": ...`.
func inputErr(format string, args ...any) error {
	return clientErr(http.StatusBadRequest, inputField+": "+format, args...)
}

func describeToken(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		return strconv.Quote(v.String())
	case string:
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(t)
}
