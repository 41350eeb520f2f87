package models

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/safetensors"
)

// torchrefConfig is the spec.Config of the fixtures, read from testdata/torchref/config.json.
func torchrefConfig(t testing.TB) spec.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(torchref, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := spec.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readST(t testing.TB, name string) *safetensors.File {
	t.Helper()
	f, err := safetensors.ReadFile(filepath.Join(torchref, name))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rawTensor is a tensor for writeRaw: any dtype, raw little-endian bytes.
type rawTensor struct {
	name  string
	dtype string
	shape []int
	data  []byte
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// rawFromFile converts a read file's tensors back to raw F32 (and I64 zeros for integer ones).
func rawFromFile(f *safetensors.File) []rawTensor {
	var out []rawTensor
	for _, n := range f.Order {
		t := f.Tensors[n]
		if t.Data == nil {
			out = append(out, rawTensor{n, "I64", t.Shape, make([]byte, 8*t.NumElements())})
			continue
		}
		out = append(out, rawTensor{n, "F32", t.Shape, f32Bytes(t.Data)})
	}
	return out
}

// writeRaw writes a safetensors file with tensors in the given order.
func writeRaw(t testing.TB, path string, ts []rawTensor, meta map[string]string) {
	t.Helper()
	hdr := map[string]any{}
	var keys []string
	var off int
	for _, r := range ts {
		shape := r.shape
		if shape == nil {
			shape = []int{}
		}
		hdr[r.name] = map[string]any{"dtype": r.dtype, "shape": shape, "data_offsets": []int{off, off + len(r.data)}}
		keys = append(keys, r.name)
		off += len(r.data)
	}
	if meta != nil {
		hdr["__metadata__"] = meta
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(h)))
	b = append(b, h...)
	for _, r := range ts {
		b = append(b, r.data...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// modelOutputs runs the imported model on the fixture input: style, genre, artist, attention,
// style/genre/artist logits.
func modelOutputs(t *testing.T, ctx *context.Context, cfg spec.Config, in *safetensors.Tensor) [][]float32 {
	t.Helper()
	exec, err := context.NewExec(backend(t), ctx.Reuse(), func(ctx *context.Context, x *graph.Node) []*graph.Node {
		o := Build(ctx, cfg, x)
		return []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention,
			o.Logits["style"], o.Logits["genre"], o.Logits["artist"]}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(in.Data, in.Shape...))
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

var outputNames = []string{"style", "genre", "artist", "attention", "style_logits", "genre_logits", "artist_logits"}

// TestImportTinyMatchesPyTorch imports the whole PyTorch state dict and compares the model's
// outputs with PyTorch's.
func TestImportTinyMatchesPyTorch(t *testing.T) {
	cfg := torchrefConfig(t)
	path := filepath.Join(torchref, "tiny.safetensors")
	ctx, rep, err := ImportWeights(path, cfg, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	file := readST(t, "tiny.safetensors")
	floats := 0
	for _, n := range file.Order {
		if file.Tensors[n].Data != nil {
			floats++
		}
	}
	if rep.Scheme != SchemeDeepArtNet || rep.Loaded != floats || len(rep.Fresh) != 0 || len(rep.Unexpected) != 0 ||
		len(rep.Ignored) != len(file.Order)-floats || rep.Renamed != 0 {
		t.Errorf("report %+v: want scheme deepartnet, %d loaded, nothing fresh, %d ignored", rep, floats, len(file.Order)-floats)
	}
	for _, n := range rep.Ignored {
		if !strings.HasSuffix(n, "num_batches_tracked") {
			t.Errorf("ignored %s", n)
		}
	}
	ref := readST(t, "tiny_outputs.safetensors")
	outs := modelOutputs(t, ctx, cfg, ref.Tensors["input"])
	for i, name := range outputNames {
		d := maxDiff(outs[i], ref.Tensors[name].Data)
		if d > 1e-4 || len(outs[i]) != len(ref.Tensors[name].Data) {
			t.Errorf("%s: %d values differ from PyTorch's %d by up to %g", name, len(outs[i]), len(ref.Tensors[name].Data), d)
		} else {
			t.Logf("%s: max abs diff to PyTorch %.2g", name, d)
		}
	}

	// The imported context round-trips through a checkpoint.
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := SaveCheckpoint(ctx, cfg, dir); err != nil {
		t.Fatal(err)
	}
	lctx, _, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	outs2 := modelOutputs(t, lctx, cfg, ref.Tensors["input"])
	if d := maxDiff(outs2[0], outs[0]); d != 0 {
		t.Errorf("style after checkpoint round trip differs by %g", d)
	}
}

// TestImportBackboneOnly: the pretrained-backbone file needs no flag; the rest is fresh and
// listed; the backbone computes PyTorch's backbone.features.
func TestImportBackboneOnly(t *testing.T) {
	cfg := torchrefConfig(t)
	path := filepath.Join(torchref, "backbone_only.safetensors")
	ctx, rep, err := ImportWeights(path, cfg, ImportOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.Scheme != SchemeBackbone {
		t.Errorf("scheme %s, want %s", rep.Scheme, SchemeBackbone)
	}
	if want := []string{PartProj, PartEncoder, PartAttention, PartHeads}; !slices.Equal(rep.FreshParts, want) {
		t.Errorf("fresh parts %v, want %v", rep.FreshParts, want)
	}
	for _, n := range rep.Fresh {
		if strings.HasPrefix(n, "backbone.features.") {
			t.Errorf("backbone tensor %s reported fresh", n)
		}
	}
	if !slices.Contains(rep.Fresh, "heads.artist.3.bias") || !slices.Contains(rep.Fresh, "encoder.lstm.weight_hh_l1_reverse") {
		t.Errorf("fresh list lacks head/LSTM tensors: %v", rep.Fresh)
	}
	// Fresh variables are initialized (finite, not all zero) and seeded.
	w := tensors.MustCopyFlatData[float32](must(ctx.GetVariableByScopeAndName(ScopeAndName("heads.style.0.weight")).Value()))
	if countNonFinite(w) != 0 || maxAbs(w) == 0 {
		t.Errorf("heads.style.0.weight not initialized: max |w| %g", maxAbs(w))
	}
	ctx2, _, err := ImportWeights(path, cfg, ImportOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	w2 := tensors.MustCopyFlatData[float32](must(ctx2.GetVariableByScopeAndName(ScopeAndName("heads.style.0.weight")).Value()))
	if maxDiff(w, w2) != 0 {
		t.Errorf("same seed, different initialization")
	}

	ref := readST(t, "tiny_outputs.safetensors")
	in := ref.Tensors["input"]
	arch, err := Architecture(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := context.NewExec(backend(t), ctx.Reuse(), func(ctx *context.Context, x *graph.Node) *graph.Node {
		return Backbone(ctx.In(ScopeBackbone).In(ScopeFeatures), arch, x)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(in.Data, in.Shape...))
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](outs[0])
	want := ref.Tensors["backbone.features"].Data
	if d := maxDiff(got, want); d > 1e-4 || len(got) != len(want) {
		t.Errorf("backbone features: %d values, PyTorch %d, max abs diff %g", len(got), len(want), d)
	} else {
		t.Logf("backbone.features: max abs diff to PyTorch %.2g", d)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// specToTimm renames a spec backbone name to timm's, written from the spec's table (not from
// the importer's code). expansion: the block has an expansion conv. head is the head conv's
// torchvision index.
func specToTimm(t *testing.T, name string, expansion map[string]bool, head string) string {
	t.Helper()
	rest := strings.TrimPrefix(name, "backbone.features.")
	p := strings.Split(rest, ".")
	switch {
	case p[0] == "0" && p[1] == "0":
		return "conv_stem." + p[2]
	case p[0] == "0" && p[1] == "1":
		return "bn1." + p[2]
	case p[0] == head && p[1] == "0":
		return "conv_head." + p[2]
	case p[0] == head && p[1] == "1":
		return "bn2." + p[2]
	}
	// p = stage, block, "block", layer, sub, param
	var s int
	fmt.Sscan(p[0], &s)
	key := p[3] + "." + p[4]
	noExp := map[string]string{"0.0": "conv_dw", "0.1": "bn1", "1.fc1": "se.conv_reduce", "1.fc2": "se.conv_expand", "2.0": "conv_pw", "2.1": "bn2"}
	exp := map[string]string{"0.0": "conv_pw", "0.1": "bn1", "1.0": "conv_dw", "1.1": "bn2", "2.fc1": "se.conv_reduce", "2.fc2": "se.conv_expand", "3.0": "conv_pwl", "3.1": "bn3"}
	table := noExp
	if expansion[p[0]+"."+p[1]] {
		table = exp
	}
	layer, ok := table[key]
	if !ok {
		t.Fatalf("no timm name for %s", name)
	}
	return fmt.Sprintf("blocks.%d.%s.%s.%s", s-1, p[1], layer, p[5])
}

// backboneVars returns the backbone variables of ctx by spec name, as float32 slices.
func backboneVars(t *testing.T, ctx *context.Context) map[string][]float32 {
	out := map[string][]float32{}
	for v := range ctx.IterVariables() {
		if partOf(v.Scope()) == PartBackbone {
			out[TorchName(v.Scope(), v.Name())] = tensors.MustCopyFlatData[float32](must(v.Value()))
		}
	}
	return out
}

// TestImportTimmAndTorchvisionNames writes the fixture's backbone under timm's names (reversed
// order, so that position cannot help) and under torchvision's, with their ImageNet
// classifiers, and checks that both import to exactly the weights of backbone_only.safetensors.
func TestImportTimmAndTorchvisionNames(t *testing.T) {
	cfg := torchrefConfig(t)
	ref, _, err := ImportWeights(filepath.Join(torchref, "backbone_only.safetensors"), cfg, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := backboneVars(t, ref)
	src := readST(t, "backbone_only.safetensors")
	raw := rawFromFile(src)

	expansion := map[string]bool{}
	re := regexp.MustCompile(`^backbone\.features\.(\d+)\.(\d+)\.block\.3\.`)
	for _, n := range src.Order {
		if m := re.FindStringSubmatch(n); m != nil {
			expansion[m[1]+"."+m[2]] = true
		}
	}
	// The fixture has a block without expansion (stage 1) and blocks with it.
	if expansion["1.0"] || !expansion["2.0"] || !expansion["4.0"] {
		t.Fatalf("fixture blocks: expansion %v, want none in features.1.0 and some in 2.0…4.0", expansion)
	}
	head := fmt.Sprint(cfg.NumStages() + 1)

	var timm, tv []rawTensor
	for i := len(raw) - 1; i >= 0; i-- {
		r := raw[i]
		r.name = specToTimm(t, r.name, expansion, head)
		timm = append(timm, r)
	}
	timm = append(timm, rawTensor{"classifier.weight", "F32", []int{2, 1}, f32Bytes([]float32{1, 2})},
		rawTensor{"classifier.bias", "F32", []int{2}, f32Bytes([]float32{1, 2})})
	for _, r := range raw {
		r.name = strings.TrimPrefix(r.name, "backbone.")
		tv = append(tv, r)
	}
	tv = append(tv, rawTensor{"classifier.1.weight", "F32", []int{2, 1}, f32Bytes([]float32{1, 2})},
		rawTensor{"classifier.1.bias", "F32", []int{2}, f32Bytes([]float32{1, 2})})

	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		ts     []rawTensor
		scheme Scheme
	}{{"timm", timm, SchemeTimm}, {"torchvision", tv, SchemeTorchvision}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".safetensors")
			writeRaw(t, path, tc.ts, map[string]string{"format": "pt"})
			ctx, rep, err := ImportWeights(path, cfg, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep)
			if rep.Scheme != tc.scheme || rep.Renamed != rep.Loaded || rep.Loaded != len(want) {
				t.Errorf("report %s: want scheme %s, all %d backbone tensors renamed and loaded", rep, tc.scheme, len(want))
			}
			if !slices.Contains(rep.Ignored, tc.ts[len(tc.ts)-1].name) {
				t.Errorf("classifier not in the ignored list %v", rep.Ignored)
			}
			got := backboneVars(t, ctx)
			for n, w := range want {
				if d := maxDiff(got[n], w); d != 0 || len(got[n]) != len(w) {
					t.Errorf("%s differs from the spec-named import (max diff %g)", n, d)
				}
			}
		})
	}
}

// f16Bits converts x to IEEE half precision by truncating the mantissa (normal range; smaller
// magnitudes become ±0); the test compares with the reader's decoding of the same bits.
func f16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	switch {
	case exp <= 0:
		return sign
	case exp >= 31:
		return sign | 0x7bff // largest finite half
	}
	return sign | uint16(exp)<<10 | uint16(b>>13&0x3ff)
}

// TestImportHalfPrecision: BF16 and F16 tensors (mixed with F32 ones) are read as float32.
func TestImportHalfPrecision(t *testing.T) {
	cfg := torchrefConfig(t)
	src := readST(t, "backbone_only.safetensors")
	var ts []rawTensor
	want := map[string][]float32{}
	for i, n := range src.Order {
		tt := src.Tensors[n]
		if tt.Data == nil || i%3 == 2 {
			ts = append(ts, rawFromFile(&safetensors.File{Order: []string{n}, Tensors: src.Tensors})...)
			want[n] = tt.Data
			continue
		}
		b := make([]byte, 2*len(tt.Data))
		w := make([]float32, len(tt.Data))
		dtype := "BF16"
		for j, x := range tt.Data {
			var h uint16
			if i%3 == 0 {
				h = uint16(math.Float32bits(x) >> 16)
				w[j] = safetensors.BFloat16ToFloat32(h)
			} else {
				dtype = "F16"
				h = f16Bits(x)
				w[j] = safetensors.Float16ToFloat32(h)
			}
			binary.LittleEndian.PutUint16(b[2*j:], h)
		}
		ts = append(ts, rawTensor{n, dtype, tt.Shape, b})
		want[n] = w
	}
	path := filepath.Join(t.TempDir(), "half.safetensors")
	writeRaw(t, path, ts, nil)
	ctx, _, err := ImportWeights(path, cfg, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := backboneVars(t, ctx)
	for n, w := range want {
		if w == nil {
			continue
		}
		if !slices.Equal(got[n], w) {
			t.Errorf("%s: imported values differ from the file's", n)
		}
		if d := maxDiff(got[n], src.Tensors[n].Data); d > 0.02*maxAbs(src.Tensors[n].Data)+1e-4 {
			t.Errorf("%s: half precision off by %g", n, d)
		}
	}
}

// TestImportErrors: bad files and mismatches are one-line errors naming the file and the cause.
func TestImportErrors(t *testing.T) {
	cfg := torchrefConfig(t)
	dir := t.TempDir()
	tiny, err := os.ReadFile(filepath.Join(torchref, "tiny.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	file := readST(t, "tiny.safetensors")
	raw := rawFromFile(file)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withRaw := func(name string, edit func([]rawTensor) []rawTensor, meta map[string]string) string {
		p := filepath.Join(dir, name)
		writeRaw(t, p, edit(slices.Clone(raw)), meta)
		return p
	}
	pastEOF := slices.Clone(tiny[:64])
	binary.LittleEndian.PutUint64(pastEOF, 1000)
	idx := func(name string) int { return slices.IndexFunc(raw, func(r rawTensor) bool { return r.name == name }) }

	pthBytes, err := os.ReadFile(filepath.Join(torchref, "pth", "tv_tiny.pth"))
	if err != nil {
		t.Fatal(err)
	}
	b4 := spec.Default()
	b4.Variant = "b4"
	otherClasses := cfg
	otherClasses.Classes = map[string][]string{"style": spec.Numbered("s", 5), "genre": cfg.Classes["genre"], "artist": cfg.Classes["artist"]}

	for _, tc := range []struct {
		name string
		path string
		cfg  spec.Config
		want []string
	}{
		{"text", write("notes.safetensors", []byte("these are not weights, just a text file\n")), cfg, []string{"notes.safetensors", "neither a safetensors file nor a PyTorch torch.save file"}},
		{"truncated", write("trunc.safetensors", tiny[:len(tiny)-100]), cfg, []string{"trunc.safetensors", "truncated"}},
		{"pth not a state dict", filepath.Join(torchref, "pth", "not_state_dict.pth"), cfg, []string{"not_state_dict.pth", "not a state dict", "torch.nn.modules.container.Sequential"}},
		{"pth truncated", write("trunc.pth", pthBytes[:len(pthBytes)/2]), cfg, []string{"trunc.pth", "truncated"}},
		{"pth wrong shape", filepath.Join(torchref, "pth", "wrong_shape.pth"), cfg, []string{"wrong_shape.pth", `"features.0.0.weight"`, "[16 3 3 3]", "[8 3 3 3]"}},
		{"header past EOF", write("eof.safetensors", pastEOF), cfg, []string{"eof.safetensors", "past the end"}},
		{"wrong shape", withRaw("shape.safetensors", func(r []rawTensor) []rawTensor {
			i := idx("attention.W.weight")
			r[i].shape = []int{r[i].shape[1], r[i].shape[0]}
			return r
		}, nil), cfg, []string{"shape.safetensors", `"attention.W.weight"`, "[32 16]", "[16 32]"}},
		{"missing", withRaw("missing.safetensors", func(r []rawTensor) []rawTensor {
			return slices.Delete(r, idx("heads.genre.3.bias"), idx("heads.genre.3.bias")+1)
		}, nil), cfg, []string{"missing.safetensors", `"heads.genre.3.bias"`, "missing"}},
		{"unexpected", withRaw("unexpected.safetensors", func(r []rawTensor) []rawTensor {
			return append(r, rawTensor{"heads.mood.0.weight", "F32", []int{2}, f32Bytes([]float32{1, 2})})
		}, nil), cfg, []string{"unexpected.safetensors", `"heads.mood.0.weight"`, "matches no model variable"}},
		{"unknown name", withRaw("unknown.safetensors", func(r []rawTensor) []rawTensor {
			return append(r, rawTensor{"optimizer.step", "F32", []int{1}, f32Bytes([]float32{1})})
		}, nil), cfg, []string{"unknown.safetensors", `"optimizer.step"`}},
		{"mixed schemes", withRaw("mixed.safetensors", func(r []rawTensor) []rawTensor {
			return append(r, rawTensor{"conv_stem.weight", "F32", []int{1}, f32Bytes([]float32{1})})
		}, nil), cfg, []string{"mixed.safetensors", "mix naming schemes", `"conv_stem.weight"`}},
		{"no scheme", withRaw("none.safetensors", func([]rawTensor) []rawTensor {
			return []rawTensor{{"linear.weight", "F32", []int{1}, f32Bytes([]float32{1})}}
		}, nil), cfg, []string{"none.safetensors", "no tensor has a DeepArtNet", `"linear.weight"`}},
		{"NaN", withRaw("nan.safetensors", func(r []rawTensor) []rawTensor {
			i := idx("encoder.lstm.bias_hh_l0")
			r[i].data = slices.Clone(r[i].data)
			binary.LittleEndian.PutUint32(r[i].data, math.Float32bits(float32(math.NaN())))
			return r
		}, nil), cfg, []string{"nan.safetensors", `"encoder.lstm.bias_hh_l0"`, "NaN"}},
		{"integer weight", withRaw("int.safetensors", func(r []rawTensor) []rawTensor {
			i := idx("attention.v.weight")
			r[i].dtype = "I32"
			return r
		}, nil), cfg, []string{"int.safetensors", `"attention.v.weight"`, "dtype I32"}},
		{"tf_efficientnet", withRaw("tf.safetensors", func(r []rawTensor) []rawTensor { return r },
			map[string]string{"model": "tf_efficientnet_b4"}), cfg, []string{"tf.safetensors", "tf_efficientnet", "TensorFlow"}},
		{"other variant", filepath.Join(torchref, "tiny.safetensors"), b4, []string{"tiny.safetensors", "backbone.features.0.0.weight", "[8 3 3 3]", "[48 3 3 3]", "variant b4"}},
		{"other class count", filepath.Join(torchref, "tiny.safetensors"), otherClasses, []string{`"heads.style.3.weight"`, "[27 32]", "[5 32]", "the file has 27 style classes, the config 5"}},
		{"no file", filepath.Join(dir, "absent.safetensors"), cfg, []string{"absent.safetensors", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, rep, err := ImportWeights(tc.path, tc.cfg, ImportOptions{})
			if err == nil {
				t.Fatalf("no error (report %v)", rep)
			}
			if ctx != nil || rep != nil {
				t.Errorf("context/report returned with the error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			t.Log(msg)
		})
	}
}

// TestImportAllowPartial: missing tensors stay initialized and unexpected ones are skipped,
// both listed; shape mismatches are still errors.
func TestImportAllowPartial(t *testing.T) {
	cfg := torchrefConfig(t)
	file := readST(t, "tiny.safetensors")
	raw := rawFromFile(file)
	var ts []rawTensor
	for _, r := range raw {
		if r.name == "heads.genre.3.bias" || r.name == "backbone.features.3.0.block.1.0.weight" {
			continue
		}
		ts = append(ts, r)
	}
	ts = append(ts, rawTensor{"heads.mood.0.weight", "F32", []int{2}, f32Bytes([]float32{1, 2})})
	path := filepath.Join(t.TempDir(), "partial.safetensors")
	writeRaw(t, path, ts, nil)
	if _, _, err := ImportWeights(path, cfg, ImportOptions{}); err == nil || !strings.Contains(err.Error(), "and 2 more") {
		t.Errorf("without AllowPartial: %v, want an error counting 2 more problems", err)
	}
	ctx, rep, err := ImportWeights(path, cfg, ImportOptions{AllowPartial: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"backbone.features.3.0.block.1.0.weight", "heads.genre.3.bias"}; !slices.Equal(rep.Fresh, want) {
		t.Errorf("fresh %v, want %v", rep.Fresh, want)
	}
	if want := []string{PartBackbone, PartHeads}; !slices.Equal(rep.FreshParts, want) {
		t.Errorf("fresh parts %v, want %v", rep.FreshParts, want)
	}
	if !slices.Equal(rep.Unexpected, []string{"heads.mood.0.weight"}) || len(rep.Warnings) != 2 {
		t.Errorf("unexpected %v, warnings %v", rep.Unexpected, rep.Warnings)
	}
	if v := ctx.GetVariableByScopeAndName(ScopeAndName("heads.genre.3.bias")); v == nil || !v.HasValue() {
		t.Errorf("fresh heads.genre.3.bias has no value")
	}
	// A shape mismatch is an error even with AllowPartial.
	bad := slices.Clone(raw)
	for i := range bad {
		if bad[i].name == "attention.v.weight" {
			bad[i].shape = []int{16, 1}
		}
	}
	writeRaw(t, path, bad, nil)
	if _, _, err := ImportWeights(path, cfg, ImportOptions{AllowPartial: true}); err == nil || !strings.Contains(err.Error(), `"attention.v.weight" has shape [16 1]`) {
		t.Errorf("mis-shaped with AllowPartial: %v", err)
	}
}

// TestImportTimmFullB0 renames a whole efficientnet_b0 backbone (7 stages, 16 blocks, head at
// features.8; values from the model's initializers) to timm's names and imports it.
func TestImportTimmFullB0(t *testing.T) {
	cfg := spec.Default()
	cfg.Variant = "b0"
	src := seededContext(5)
	g := graph.NewGraph(backend(t), "b0")
	Build(src, cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 32, 32)))
	if err := src.InitializeVariables(backend(t), nil); err != nil {
		t.Fatal(err)
	}
	want := backboneVars(t, src)
	var names []string
	for v := range src.IterVariables() {
		if partOf(v.Scope()) == PartBackbone {
			names = append(names, TorchName(v.Scope(), v.Name()))
		}
	}
	expansion := map[string]bool{}
	re := regexp.MustCompile(`^backbone\.features\.(\d+)\.(\d+)\.block\.3\.`)
	for _, n := range names {
		if m := re.FindStringSubmatch(n); m != nil {
			expansion[m[1]+"."+m[2]] = true
		}
	}
	var ts []rawTensor
	stages := map[string]bool{}
	for _, n := range names {
		tn := specToTimm(t, n, expansion, "8")
		if strings.HasPrefix(tn, "blocks.") {
			stages[strings.Split(tn, ".")[1]] = true
		}
		v := src.GetVariableByScopeAndName(ScopeAndName(n))
		ts = append(ts, rawTensor{tn, "F32", v.Shape().Dimensions, f32Bytes(want[n])})
	}
	if len(stages) != 7 || len(expansion) != 15 {
		t.Fatalf("b0: %d timm stages, %d expansion blocks; want 7 and 15", len(stages), len(expansion))
	}
	path := filepath.Join(t.TempDir(), "efficientnet_b0.safetensors")
	writeRaw(t, path, ts, map[string]string{"format": "pt"})
	ctx, rep, err := ImportWeights(path, cfg, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.Scheme != SchemeTimm || rep.Loaded != len(names) {
		t.Errorf("report %s: want timm, %d loaded", rep, len(names))
	}
	got := backboneVars(t, ctx)
	for n, w := range want {
		if !slices.Equal(got[n], w) {
			t.Errorf("%s differs after the timm round trip", n)
		}
	}
	if c := ParamCounts(ctx)[PartBackbone]; c != 4007548 {
		t.Errorf("b0 backbone has %d parameters", c)
	}
	// Imported as another variant: the error says which variant the file looks like.
	b4 := spec.Default()
	if _, _, err := ImportWeights(path, b4, ImportOptions{}); err == nil || !strings.Contains(err.Error(), "looks like efficientnet_b0 (try variant b0)") {
		t.Errorf("b0 file into b4: %v", err)
	} else {
		t.Log(err)
	}
}

// BenchmarkImportB4Backbone imports a full efficientnet_b4 backbone under torchvision's names
// (≈70 MB of F32; values from the model's initializers) into the spec's B4 DeepArtNet.
func BenchmarkImportB4Backbone(b *testing.B) {
	cfg := spec.Default()
	src := seededContext(5)
	g := graph.NewGraph(backend(b), "b4")
	Build(src, cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 32, 32)))
	if err := src.InitializeVariables(backend(b), nil); err != nil {
		b.Fatal(err)
	}
	var ts []rawTensor
	size := 0
	for v := range src.IterVariables() {
		if partOf(v.Scope()) == PartBackbone {
			data := tensors.MustCopyFlatData[float32](must(v.Value()))
			ts = append(ts, rawTensor{strings.TrimPrefix(TorchName(v.Scope(), v.Name()), "backbone."), "F32", v.Shape().Dimensions, f32Bytes(data)})
			size += 4 * len(data)
		}
	}
	path := filepath.Join(b.TempDir(), "efficientnet_b4.safetensors")
	writeRaw(b, path, ts, nil)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := ImportWeights(path, cfg, ImportOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
