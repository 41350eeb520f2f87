// Package safetensors reads and writes the safetensors weight format: an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, optional "__metadata__"}, and
// the raw little-endian tensor data. F32, F16, BF16 (and F64) tensors are converted to float32;
// integer and bool tensors (e.g. BatchNorm's I64 num_batches_tracked) are listed with their
// shape but carry no data.
//
// It has its own folder because two unrelated parts of artnet use it: the PyTorch weight import
// of the model, and the tests that compare against the PyTorch reference fixtures in
// testdata/torchref. It is written here rather than imported because no well-kept Go reader is
// on the module proxy: github.com/nlpodyssey/safetensors has no tagged release (only a 2025
// pseudo-version), its errors do not name the offending tensor, and it forgets the header's
// tensor order; github.com/gomlx/go-huggingface v0.3.1 only lists .safetensors files on the hub.
//
// Reading is strict: a file that is not safetensors, is truncated, has a header length past its
// end, tensor data_offsets outside the data section, overlapping, leaving holes or not matching
// dtype×shape, or an unknown dtype, is rejected with a one-line error naming the file and the
// tensor. Write writes F32 tensors atomically (temporary file + rename).
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/artnet/artnet/internal/atomicfile"
)

// Tensor is one named tensor of a file.
type Tensor struct {
	Name  string
	DType string // as in the file: "F32", "F16", "BF16", "I64", …
	Shape []int
	// Data holds the values converted to float32 (row-major) for floating-point dtypes, and is
	// nil for integer and bool dtypes.
	Data []float32
}

// NumElements returns the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is the content of a safetensors file.
type File struct {
	Metadata map[string]string  // the header's "__metadata__"; nil when absent
	Tensors  map[string]*Tensor // by name
	Order    []string           // tensor names in header order
}

// MaxHeaderSize is the largest JSON header accepted (the reference implementation's limit).
const MaxHeaderSize = 100 << 20

// dtypeSizes are the element sizes in bytes of the dtypes of the safetensors format.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// ReadFile reads and validates the safetensors file at path.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return Read(b, path)
}

type rawInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

type entry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int64
}

// Read parses and validates a whole safetensors file held in b; name (usually the path) is used
// in error messages.
func Read(b []byte, name string) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: "+format, append([]any{name}, args...)...)
	}
	if len(b) < 8 {
		return nil, fail("not a safetensors file: %d bytes, too short for the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	rest := uint64(len(b) - 8)
	if n > MaxHeaderSize {
		return nil, fail("not a safetensors file: header length %d is over the %d-byte limit (file starts with %q)", n, MaxHeaderSize, printable(b[:8]))
	}
	if n > rest {
		return nil, fail("header length %d past the end of the file (%d bytes after the length): truncated or not a safetensors file", n, rest)
	}
	header := b[8 : 8+n]
	data := b[8+n:]
	if t := bytes.TrimLeft(header, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fail("not a safetensors file: header is not a JSON object (starts with %q)", printable(header[:min(len(header), 8)]))
	}

	entries, meta, err := parseHeader(header)
	if err != nil {
		return nil, fail("header: %v", err)
	}

	// Each tensor's byte range must match dtype × shape and lie inside the data section.
	dataLen := int64(len(data))
	for _, e := range entries {
		if e.begin < 0 || e.end < e.begin {
			return nil, fail("tensor %q: data_offsets [%d, %d] are not an increasing pair of non-negative offsets", e.name, e.begin, e.end)
		}
		size := int64(dtypeSizes[e.dtype])
		need := size
		for _, d := range e.shape {
			if d != 0 && need > math.MaxInt64/int64(d) {
				return nil, fail("tensor %q: shape %v is too large", e.name, e.shape)
			}
			need *= int64(d)
		}
		if e.end-e.begin != need {
			return nil, fail("tensor %q: data_offsets [%d, %d] cover %d bytes, but %s × %v needs %d", e.name, e.begin, e.end, e.end-e.begin, e.dtype, e.shape, need)
		}
		if e.end > dataLen {
			return nil, fail("tensor %q: data_offsets [%d, %d] past the end of the %d-byte data section: file truncated or offsets wrong", e.name, e.begin, e.end, dataLen)
		}
	}

	// The ranges must tile the data section: no overlap, no hole, nothing after the last.
	sorted := make([]*entry, len(entries))
	for i := range entries {
		sorted[i] = &entries[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].begin != sorted[j].begin {
			return sorted[i].begin < sorted[j].begin
		}
		return sorted[i].end < sorted[j].end
	})
	var pos int64
	prev := ""
	for _, e := range sorted {
		switch {
		case e.begin < pos:
			return nil, fail("tensor %q: data_offsets [%d, %d] overlap tensor %q (which ends at %d)", e.name, e.begin, e.end, prev, pos)
		case e.begin > pos:
			return nil, fail("tensor %q: data_offsets [%d, %d] leave a hole of %d bytes before it (data must be contiguous)", e.name, e.begin, e.end, e.begin-pos)
		}
		pos, prev = e.end, e.name
	}
	if pos != dataLen {
		return nil, fail("%d bytes after the last tensor's data (data section is %d bytes, tensors cover %d)", dataLen-pos, dataLen, pos)
	}

	f := &File{Metadata: meta, Tensors: make(map[string]*Tensor, len(entries)), Order: make([]string, 0, len(entries))}
	for _, e := range entries {
		t := &Tensor{Name: e.name, DType: e.dtype, Shape: e.shape}
		t.Data = convert(e.dtype, data[e.begin:e.end])
		f.Tensors[e.name] = t
		f.Order = append(f.Order, e.name)
	}
	return f, nil
}

// parseHeader decodes the JSON header, keeping the tensors' order.
func parseHeader(header []byte) ([]entry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return nil, nil, err
	}
	var entries []entry
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("invalid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("invalid JSON: key %v is not a string", tok)
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("tensor %q appears twice", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var ri rawInfo
		if err := dec.Decode(&ri); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: invalid JSON entry: %v", key, err)
		}
		switch {
		case ri.DType == nil:
			return nil, nil, fmt.Errorf("tensor %q: no dtype", key)
		case ri.Shape == nil:
			return nil, nil, fmt.Errorf("tensor %q: no shape", key)
		case ri.DataOffsets == nil:
			return nil, nil, fmt.Errorf("tensor %q: no data_offsets", key)
		case len(*ri.DataOffsets) != 2:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets must have 2 entries, got %d", key, len(*ri.DataOffsets))
		}
		if _, ok := dtypeSizes[*ri.DType]; !ok {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", key, *ri.DType)
		}
		shape := make([]int, len(*ri.Shape))
		for i, d := range *ri.Shape {
			if d < 0 || d > math.MaxInt32 {
				return nil, nil, fmt.Errorf("tensor %q: invalid dimension %d in shape %v", key, d, *ri.Shape)
			}
			shape[i] = int(d)
		}
		entries = append(entries, entry{name: key, dtype: *ri.DType, shape: shape, begin: (*ri.DataOffsets)[0], end: (*ri.DataOffsets)[1]})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("invalid JSON: data after the header object")
	}
	return entries, meta, nil
}

// convert returns the float32 values of raw little-endian data, or nil for non-float dtypes.
func convert(dtype string, raw []byte) []float32 {
	switch dtype {
	case "F32":
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	case "F64":
		out := make([]float32, len(raw)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
		return out
	case "F16":
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out
	case "BF16":
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out
	}
	return nil
}

// Float16ToFloat32 converts IEEE 754 half-precision bits to float32 (exactly: every half value
// is a float32 value), including subnormals, infinities and NaN.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf / NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: mant × 2^-24.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// BFloat16ToFloat32 converts bfloat16 bits (the upper half of a float32) to float32.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// printable renders bytes for an error message.
func printable(b []byte) string {
	return strings.ToValidUTF8(string(b), "?")
}

// Write writes tensors as an F32 safetensors file at path, in the given order, with meta as the
// header's "__metadata__" (omitted when empty). Every tensor must have DType "F32" (or empty)
// and len(Data) equal to the product of its Shape. The file is written atomically (internal/atomicfile,
// mode 0644), so path is untouched on error.
func Write(path string, tensors []*Tensor, meta map[string]string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: "+format, append([]any{path}, args...)...)
	}
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if len(meta) > 0 {
		m, err := json.Marshal(meta) // keys sorted
		if err != nil {
			return fail("__metadata__: %v", err)
		}
		comma()
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(m)
	}
	seen := map[string]bool{}
	var offset int64
	for i, t := range tensors {
		if t == nil {
			return fail("tensor #%d is nil", i)
		}
		if t.Name == "" || t.Name == "__metadata__" {
			return fail("tensor #%d: invalid name %q", i, t.Name)
		}
		if seen[t.Name] {
			return fail("tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		if t.DType != "" && t.DType != "F32" {
			return fail("tensor %q: dtype %s, Write only writes F32", t.Name, t.DType)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return fail("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
		}
		if n := t.NumElements(); n != len(t.Data) {
			return fail("tensor %q: shape %v has %d elements, Data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		name, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sh, _ := json.Marshal(shape)
		end := offset + 4*int64(len(t.Data))
		comma()
		fmt.Fprintf(&hdr, `%s:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, name, sh, offset, end)
		offset = end
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 { // align the data section, as the reference writer does
		hdr.WriteByte(' ')
	}

	err := atomicfile.Write(path, 0o644, func(out io.Writer) error {
		w := bufio.NewWriterSize(out, 1<<16)
		var lenb [8]byte
		binary.LittleEndian.PutUint64(lenb[:], uint64(hdr.Len()))
		w.Write(lenb[:])
		w.Write(hdr.Bytes())
		var buf [4]byte
		for _, t := range tensors {
			for _, v := range t.Data {
				binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
				w.Write(buf[:])
			}
		}
		return w.Flush() // a bufio.Writer keeps its first error
	})
	if err != nil {
		return fmt.Errorf("safetensors: %w", err) // the error names the path
	}
	return nil
}
