package torchpth

import (
	"archive/zip"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/safetensors"
)

// fixtures are written by tools/torchref/gen_pth.py (torch 1.13's torch.save).
var fixtures = filepath.Join("..", "testdata", "torchref", "pth")

func read(t *testing.T, name string) *safetensors.File {
	t.Helper()
	f, err := ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTorchvisionStateDict reads a torchvision EfficientNet state dict (an OrderedDict) and
// checks names, order, dtypes and values against the F32 reference written beside it.
func TestTorchvisionStateDict(t *testing.T) {
	f := read(t, "tv_tiny.pth")
	if len(f.Order) != 96 || f.Order[0] != "features.0.0.weight" || f.Order[len(f.Order)-1] != "classifier.1.bias" {
		t.Fatalf("%d tensors, first %q, last %q; want 96, features.0.0.weight … classifier.1.bias", len(f.Order), f.Order[0], f.Order[len(f.Order)-1])
	}
	w := f.Tensors["features.0.0.weight"]
	if w.DType != "F32" || len(w.Shape) != 4 || w.Shape[0] != 8 || len(w.Data) != 8*3*3*3 {
		t.Errorf("features.0.0.weight: %s %v, %d values", w.DType, w.Shape, len(w.Data))
	}
	nbt := f.Tensors["features.0.1.num_batches_tracked"]
	if nbt.DType != "I64" || nbt.Data != nil || len(nbt.Shape) != 0 {
		t.Errorf("num_batches_tracked: %s %v data %v, want I64 scalar without data", nbt.DType, nbt.Shape, nbt.Data)
	}
	if f.Metadata["format"] != "zip" || f.Metadata["state_dict_key"] != "" {
		t.Errorf("metadata %v", f.Metadata)
	}
	// The float16 copy inside {"state_dict": …, "args": Namespace(…)} has the same names and
	// values rounded to half precision.
	h := read(t, "tv_tiny_f16_wrapped.pth")
	if h.Metadata["state_dict_key"] != "state_dict" || len(h.Order) != len(f.Order) {
		t.Fatalf("wrapped: metadata %v, %d tensors", h.Metadata, len(h.Order))
	}
	for _, n := range f.Order {
		a, b := f.Tensors[n], h.Tensors[n]
		if a.Data == nil {
			continue
		}
		if b.DType != "F16" {
			t.Fatalf("%s: dtype %s in the half file", n, b.DType)
		}
		for i := range a.Data {
			if d := math.Abs(float64(a.Data[i] - b.Data[i])); d > 1e-3*math.Max(1, math.Abs(float64(a.Data[i]))) {
				t.Fatalf("%s[%d]: %g as float16 is %g", n, i, a.Data[i], b.Data[i])
			}
		}
	}
}

// TestDTypesAndWrappers: a plain dict under "model" with float16, bfloat16, float64 and int64
// tensors; the legacy (pre-1.6) format.
func TestDTypesAndWrappers(t *testing.T) {
	tv := read(t, "tv_tiny.pth")
	f := read(t, "model_key.pth")
	if f.Metadata["state_dict_key"] != "model" || len(f.Order) != 4 {
		t.Fatalf("metadata %v, tensors %v", f.Metadata, f.Order)
	}
	for name, dt := range map[string]string{"features.0.0.weight": "F16", "features.0.1.weight": "BF16", "features.0.1.bias": "F64", "features.0.1.num_batches_tracked": "I64"} {
		x := f.Tensors[name]
		if x == nil || x.DType != dt {
			t.Errorf("%s: %+v, want dtype %s", name, x, dt)
			continue
		}
		if x.Data == nil {
			continue
		}
		ref := tv.Tensors[name].Data
		tol := map[string]float64{"F16": 1e-3, "BF16": 1e-2, "F64": 0}[dt]
		for i := range ref {
			if d := math.Abs(float64(ref[i] - x.Data[i])); d > tol*math.Max(1, math.Abs(float64(ref[i]))) {
				t.Fatalf("%s[%d]: %g, want %g (±%g)", name, i, x.Data[i], ref[i], tol)
			}
		}
	}
	l := read(t, "legacy.pth")
	if l.Metadata["format"] != "legacy" || len(l.Order) != 6 {
		t.Fatalf("legacy: metadata %v, tensors %v", l.Metadata, l.Order)
	}
	for _, n := range l.Order {
		a, b := tv.Tensors[n], l.Tensors[n]
		if len(a.Data) != len(b.Data) {
			t.Fatalf("legacy %s: %d values, want %d", n, len(b.Data), len(a.Data))
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("legacy %s[%d] = %g, want %g", n, i, b.Data[i], a.Data[i])
			}
		}
	}
}

// TestViews: transposed, offset, strided and expanded tensors come back contiguous, equal to
// PyTorch's .contiguous().
func TestViews(t *testing.T) {
	f := read(t, "views.pth")
	ref, err := safetensors.ReadFile(filepath.Join(fixtures, "views_ref.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ref.Order {
		want, got := ref.Tensors[n], f.Tensors[n]
		if got == nil {
			t.Errorf("%s missing", n)
			continue
		}
		if len(got.Shape) != len(want.Shape) || len(got.Data) != len(want.Data) {
			t.Errorf("%s: shape %v (%d values), want %v (%d)", n, got.Shape, len(got.Data), want.Shape, len(want.Data))
			continue
		}
		for i := range want.Data {
			if got.Data[i] != want.Data[i] {
				t.Errorf("%s[%d] = %g, want %g", n, i, got.Data[i], want.Data[i])
				break
			}
		}
	}
}

// TestRefused: what is not a state dict, and damaged files, give one-line errors naming the
// file and the cause.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	whole, err := os.ReadFile(filepath.Join(fixtures, "tv_tiny.pth"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	st, err := os.ReadFile(filepath.Join("..", "testdata", "torchref", "backbone_only.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ path, want string }{
		"module":      {filepath.Join(fixtures, "not_state_dict.pth"), "not a state dict: the file holds a pickled torch.nn.modules.container.Sequential object"},
		"list":        {filepath.Join(fixtures, "list.pth"), "not a state dict: the file holds a list of 2"},
		"torchscript": {filepath.Join(fixtures, "torchscript.pt"), "a TorchScript archive (torch.jit.save), not a state dict"},
		"truncated":   {write("trunc.pth", whole[:len(whole)/2]), "not a readable zip archive (truncated or damaged?)"},
		"tail cut":    {write("tail.pth", whole[:len(whole)-10]), "truncated or damaged"},
		"empty":       {write("empty.pth", nil), "not a torch.save file"},
		"text":        {write("text.pth", []byte("hello, world")), "not a torch.save file"},
		"safetensor":  {write("st.pth", st), "not a torch.save file"},
		"legacy cut":  {write("legacy.pth", mustRead(t, filepath.Join(fixtures, "legacy.pth"))[:1500]), "truncated"},
	} {
		_, err := ReadFile(tc.path)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		msg := err.Error()
		t.Logf("%s: %s", name, msg)
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.path) || strings.Contains(msg, "\n") {
			t.Errorf("%s: got %q, want one line naming %s and %q", name, msg, tc.path, tc.want)
		}
	}
}

// TestDamagedRecord: a zip whose data record was altered fails its CRC (zip's own check).
func TestDamagedRecord(t *testing.T) {
	b := mustRead(t, filepath.Join(fixtures, "tv_tiny.pth"))
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var off int64 = -1
	for _, zf := range zr.File {
		if zf.Name == "archive/data/0" {
			if off, err = zf.DataOffset(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if off < 0 {
		t.Fatal("no data/0 record")
	}
	c := append([]byte{}, b...)
	c[off+5] ^= 0xff // inside the first record's values
	p := filepath.Join(t.TempDir(), "crc.pth")
	if err := os.WriteFile(p, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("got %v, want a checksum error", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSniff(t *testing.T) {
	if !Sniff(mustRead(t, filepath.Join(fixtures, "tv_tiny.pth"))) || !Sniff(mustRead(t, filepath.Join(fixtures, "legacy.pth"))) {
		t.Error("torch.save files not recognized")
	}
	if Sniff([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{")) {
		t.Error("a safetensors header taken for torch.save")
	}
}

// TestStripPrefix: DataParallel's "module." (or Lightning's "model.") is stripped only when every
// name carries it.
func TestStripPrefix(t *testing.T) {
	mk := func(names ...string) *safetensors.File {
		f := &safetensors.File{Tensors: map[string]*safetensors.Tensor{}, Metadata: map[string]string{}}
		for _, n := range names {
			f.Tensors[n] = &safetensors.Tensor{Name: n}
			f.Order = append(f.Order, n)
		}
		return f
	}
	f := mk("module.features.0.0.weight", "module.classifier.1.bias")
	stripPrefix(f)
	if f.Order[0] != "features.0.0.weight" || f.Tensors["classifier.1.bias"] == nil || f.Tensors["classifier.1.bias"].Name != "classifier.1.bias" || f.Metadata["stripped_prefix"] != "module." {
		t.Errorf("module. prefix: %v %v", f.Order, f.Metadata)
	}
	g := mk("model.features.0.0.weight", "features.1.0.weight")
	stripPrefix(g)
	if g.Order[0] != "model.features.0.0.weight" || g.Metadata["stripped_prefix"] != "" {
		t.Errorf("a prefix only some names carry was stripped: %v", g.Order)
	}
}

// FuzzReadFile: no input makes the reader panic or hang; seeded with every fixture.
func FuzzReadFile(f *testing.F) {
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".pth") || strings.HasSuffix(e.Name(), ".pt") {
			b, err := os.ReadFile(filepath.Join(fixtures, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			if len(b) < 8<<10 {
				f.Add(b)
			}
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.pth")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sd, err := ReadFile(p)
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), p) {
				t.Fatalf("error not one line naming the file: %q", err)
			}
			return
		}
		for _, n := range sd.Order {
			tt := sd.Tensors[n]
			if tt.Data != nil && len(tt.Data) != tt.NumElements() {
				t.Fatalf("%s: %d values for shape %v", n, len(tt.Data), tt.Shape)
			}
		}
	})
}
