package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawFile builds a safetensors file from a literal header and data section.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func u16bytes(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadValid(t *testing.T) {
	hdr := `{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"n":{"dtype":"I64","shape":[],"data_offsets":[16,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}}   `
	data := append(f32bytes(1, -2, 3.5, 0), make([]byte, 8)...)
	data = append(data, f32bytes(7)...)
	p := writeTemp(t, "ok.safetensors", rawFile(hdr, data))
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"w", "n", "b"}; !reflect.DeepEqual(f.Order, want) {
		t.Errorf("Order = %v, want %v (header order)", f.Order, want)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("Metadata = %v", f.Metadata)
	}
	w := f.Tensors["w"]
	if w.DType != "F32" || !reflect.DeepEqual(w.Shape, []int{2, 2}) || !reflect.DeepEqual(w.Data, []float32{1, -2, 3.5, 0}) {
		t.Errorf("w = %+v", w)
	}
	n := f.Tensors["n"]
	if n.DType != "I64" || len(n.Shape) != 0 || n.Data != nil {
		t.Errorf("I64 tensor n = %+v, want listed with no data", n)
	}
	if got := f.Tensors["b"].Data; !reflect.DeepEqual(got, []float32{7}) {
		t.Errorf("b = %v", got)
	}
}

func TestFloat16Known(t *testing.T) {
	cases := []struct {
		bits uint16
		want float32
	}{
		{0x3C00, 1}, {0xC000, -2}, {0x3800, 0.5}, {0x7BFF, 65504}, {0x3555, 0.333251953125},
		{0x0400, float32(math.Ldexp(1, -14))}, // smallest normal
		{0x0001, float32(math.Ldexp(1, -24))}, // smallest subnormal
		{0x83FF, -float32(math.Ldexp(1023, -24))},
		{0x0000, 0}, {0x7C00, float32(math.Inf(1))}, {0xFC00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := Float16ToFloat32(c.bits); got != c.want {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", c.bits, got, c.want)
		}
	}
	if got := Float16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("Float16ToFloat32(0x8000) = %g, want -0", got)
	}
	if got := Float16ToFloat32(0x7E00); !math.IsNaN(float64(got)) {
		t.Errorf("Float16ToFloat32(0x7e00) = %g, want NaN", got)
	}
}

func TestBFloat16Known(t *testing.T) {
	cases := []struct {
		bits uint16
		want float32
	}{
		{0x3F80, 1}, {0xC040, -3}, {0x4049, 3.140625}, {0x3E80, 0.25}, {0x7F80, float32(math.Inf(1))}, {0x0000, 0},
	}
	for _, c := range cases {
		if got := BFloat16ToFloat32(c.bits); got != c.want {
			t.Errorf("BFloat16ToFloat32(%#04x) = %g, want %g", c.bits, got, c.want)
		}
	}
}

func TestReadHalfTensors(t *testing.T) {
	hdr := `{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[6,10]},` +
		`"d":{"dtype":"F64","shape":[1],"data_offsets":[10,18]}}`
	data := append(u16bytes(0x3C00, 0xC000, 0x3555, 0x4049, 0xC040), make([]byte, 8)...)
	binary.LittleEndian.PutUint64(data[10:], math.Float64bits(-0.125))
	f, err := Read(rawFile(hdr, data), "half")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Tensors["h"].Data, []float32{1, -2, 0.333251953125}; !reflect.DeepEqual(got, want) {
		t.Errorf("F16 data = %v, want %v", got, want)
	}
	if got, want := f.Tensors["b"].Data, []float32{3.140625, -3}; !reflect.DeepEqual(got, want) {
		t.Errorf("BF16 data = %v, want %v", got, want)
	}
	if got := f.Tensors["d"].Data; !reflect.DeepEqual(got, []float32{-0.125}) {
		t.Errorf("F64 data = %v", got)
	}
}

func TestReadErrors(t *testing.T) {
	valid := rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32bytes(1, 2, 3))
	longHeader := make([]byte, 8, 50)
	binary.LittleEndian.PutUint64(longHeader, 1000)
	longHeader = append(longHeader, `{"a":{"dtype":"F32","shape":[2],"data_`...)
	cases := []struct {
		name string
		file []byte
		want string // substring of the error
	}{
		{"empty", nil, "not a safetensors file"},
		{"too short", []byte{1, 2, 3}, "not a safetensors file"},
		{"text file", []byte("hello, this is a text file and not weights\n"), "not a safetensors file"},
		{"small text file", []byte("#\x00\x00\x00\x00\x00\x00\x00plain text, no JSON here at all, nothing.."), "not a safetensors file"},
		{"header length past end", longHeader, "header length 1000 past the end of the file"},
		{"truncated", valid[:len(valid)-3], `tensor "b"`},
		{"truncated in data", valid[:len(valid)-6], "past the end of the"},
		{"offsets past data section", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}}`, f32bytes(1, 2, 3, 4)), `tensor "a": data_offsets [4, 20] past the end`},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32bytes(1, 2, 3)), `tensor "b": data_offsets [4, 12] overlap tensor "a"`},
		{"offsets do not match shape", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32bytes(1, 2)), "cover 8 bytes, but F32 × [3] needs 12"},
		{"offsets do not match dtype", rawFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, f32bytes(1, 2)), "needs 4"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F24","shape":[2],"data_offsets":[0,6]}}`, make([]byte, 6)), `tensor "a": unknown dtype "F24"`},
		{"hole", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32bytes(1, 2)), "hole"},
		{"trailing bytes", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32bytes(1, 2)), "4 bytes after the last tensor"},
		{"decreasing offsets", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, f32bytes(1)), "increasing"},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32bytes(1)), "invalid dimension"},
		{"invalid JSON", rawFile(`{"a":{"dtype":"F32",`, nil), "invalid JSON"},
		{"header not object", rawFile(`["a"]`, nil), "not a JSON object"},
		{"missing offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, f32bytes(1)), "no data_offsets"},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32bytes(1)), "2 entries"},
		{"duplicate", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32bytes(1, 2)), "appears twice"},
		{"bad metadata", rawFile(`{"__metadata__":{"k":1}}`, nil), "__metadata__"},
		{"after header", rawFile(`{} {}`, nil), "after the header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", c.file)
			f, err := ReadFile(p)
			if err == nil {
				t.Fatalf("ReadFile succeeded (%d tensors), want error containing %q", len(f.Order), c.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if !strings.Contains(msg, p) {
				t.Errorf("error %q does not name the file", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	in := []*Tensor{
		{Name: "z.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, -4, 5.5, float32(math.Inf(-1))}},
		{Name: "a.scalar", DType: "F32", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
		{Name: "m.bias", Shape: []int{1}, Data: []float32{-1e-30}},
	}
	meta := map[string]string{"format": "pt", "note": `quote " and unicode é`}
	p := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := Write(p, in, meta); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Errorf("Metadata = %v, want %v", f.Metadata, meta)
	}
	if len(f.Order) != len(in) {
		t.Fatalf("Order = %v", f.Order)
	}
	for i, w := range in {
		if f.Order[i] != w.Name {
			t.Errorf("Order[%d] = %q, want %q", i, f.Order[i], w.Name)
		}
		g := f.Tensors[w.Name]
		if g == nil || g.DType != "F32" || !reflect.DeepEqual(g.Shape, w.Shape) || !reflect.DeepEqual(g.Data, w.Data) {
			t.Errorf("tensor %q: got %+v, want %+v", w.Name, g, w)
		}
	}
	// The data section is 8-byte aligned, as the reference writer makes it.
	b, _ := os.ReadFile(p)
	if n := binary.LittleEndian.Uint64(b); n%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", n)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the output", len(entries))
	}
	// Without metadata the key is absent.
	if err := Write(p, in[:1], nil); err != nil {
		t.Fatal(err)
	}
	if f, err := ReadFile(p); err != nil || f.Metadata != nil {
		t.Errorf("no metadata: f=%v err=%v", f, err)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "keep.safetensors")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		tensors []*Tensor
		want    string
	}{
		{"length mismatch", []*Tensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}, `tensor "a": shape [2 2] has 4 elements, Data has 3`},
		{"not F32", []*Tensor{{Name: "a", DType: "F16", Shape: []int{1}, Data: []float32{1}}}, "only writes F32"},
		{"duplicate", []*Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}}, "appears twice"},
		{"no name", []*Tensor{{Shape: []int{1}, Data: []float32{1}}}, "invalid name"},
		{"nil", []*Tensor{nil}, "nil"},
		{"negative", []*Tensor{{Name: "a", Shape: []int{-1, -1}, Data: []float32{1}}}, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(existing, c.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), existing) {
				t.Fatalf("err = %v, want one containing %q and the path", err, c.want)
			}
			if b, _ := os.ReadFile(existing); string(b) != "old" {
				t.Errorf("existing file changed to %q", b)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after failed writes, want 1", len(entries))
	}
	bad := filepath.Join(dir, "no-such-dir", "x.safetensors")
	if err := Write(bad, []*Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}}, nil); err == nil {
		t.Error("Write into a missing folder succeeded")
	}
}

func TestNumElements(t *testing.T) {
	for _, c := range []struct {
		shape []int
		want  int
	}{{nil, 1}, {[]int{}, 1}, {[]int{3}, 3}, {[]int{2, 0, 5}, 0}, {[]int{2, 3, 4}, 24}} {
		if got := (&Tensor{Shape: c.shape}).NumElements(); got != c.want {
			t.Errorf("NumElements(%v) = %d, want %d", c.shape, got, c.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add(rawFile(`{"__metadata__":{"a":"b"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}`,
		append(f32bytes(1, 2), u16bytes(0x3C00)...)))
	f.Add(rawFile(`{"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{}`, nil))
	f.Add([]byte("not a safetensors file"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(b, "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		if len(file.Order) != len(file.Tensors) {
			t.Fatalf("Order has %d names, Tensors %d", len(file.Order), len(file.Tensors))
		}
		for _, name := range file.Order {
			tn := file.Tensors[name]
			if tn == nil {
				t.Fatalf("tensor %q in Order but not in Tensors", name)
			}
			if tn.Data != nil && len(tn.Data) != tn.NumElements() {
				t.Fatalf("tensor %q: %d values for shape %v", name, len(tn.Data), tn.Shape)
			}
		}
		// What was read can be written back (as F32) and read again identically.
		var fl []*Tensor
		for _, name := range file.Order {
			if tn := file.Tensors[name]; tn.Data != nil {
				fl = append(fl, &Tensor{Name: name, Shape: tn.Shape, Data: tn.Data})
			}
		}
		p := filepath.Join(t.TempDir(), "rt.safetensors")
		if err := Write(p, fl, file.Metadata); err != nil {
			t.Fatalf("Write of a read file: %v", err)
		}
		back, err := ReadFile(p)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		for _, w := range fl {
			g := back.Tensors[w.Name]
			if g == nil || !bytes.Equal(f32bytes(g.Data...), f32bytes(w.Data...)) {
				t.Fatalf("tensor %q changed in the round trip", w.Name)
			}
		}
	})
}
