package models

// PyTorch / timm weight import (ImportWeights). See ImportWeights for the accepted
// naming schemes and ../shared/spec/deepartnet.md for the names and the timm table.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/safetensors"
	"github.com/artnet/artnet/torchpth"
)

// Scheme is the naming scheme of a weights file, detected from its tensor names.
type Scheme string

// Naming schemes ImportWeights recognizes.
const (
	// SchemeDeepArtNet: a DeepArtNet state dict under the spec's names (backbone.features.*,
	// backbone.proj.*, encoder.lstm.*, attention.*, heads.*).
	SchemeDeepArtNet Scheme = "deepartnet"
	// SchemeBackbone: only backbone.features.* (an ImageNet-pretrained backbone saved under the
	// spec's names); the rest of the model is freshly initialized by design.
	SchemeBackbone Scheme = "deepartnet-backbone"
	// SchemeTorchvision: torchvision's efficientnet_bN() state dict (features.*; its ImageNet
	// classifier.* is ignored).
	SchemeTorchvision Scheme = "torchvision"
	// SchemeTimm: timm's efficientnet_bN state dict (conv_stem, bn1, blocks.s.b.*, conv_head,
	// bn2; its ImageNet classifier.* is ignored), renamed with the spec's timm → torchvision table.
	SchemeTimm Scheme = "timm"
)

// ImportOptions configure ImportWeights.
type ImportOptions struct {
	// AllowPartial accepts a file that lacks model tensors its scheme should have (they keep
	// their fresh initialization and are listed in ImportReport.Fresh) or holds tensors that
	// match no model variable (listed in ImportReport.Unexpected). A tensor whose shape differs
	// from the model's is an error regardless.
	AllowPartial bool
	// Seed seeds the initializers of the variables the file does not provide (0: not
	// deterministic, GoMLX's default).
	Seed int64
}

// ImportReport says what ImportWeights did.
type ImportReport struct {
	Path     string
	Scheme   Scheme
	Metadata map[string]string // the file's __metadata__ (nil when absent)
	// Loaded is the number of model variables set from the file; LoadedValues their element
	// count (BatchNorm running statistics included).
	Loaded       int
	LoadedValues int
	// Renamed is the number of tensors whose name was mapped to the spec's (timm, torchvision).
	Renamed int
	// Fresh lists the PyTorch names of the model variables left at their initialization, in
	// the model's order; FreshParts the ParamCounts parts they belong to ("proj", "encoder", …).
	Fresh      []string
	FreshParts []string
	// Ignored lists file tensors that are not model weights by design: integer BatchNorm
	// num_batches_tracked counters and the ImageNet classifier of torchvision/timm files.
	Ignored []string
	// Unexpected lists file tensors that match no model variable (only with AllowPartial;
	// otherwise they are an error).
	Unexpected []string
	// Warnings are things the caller should tell the user.
	Warnings []string
}

// String is a short human-readable summary.
func (r *ImportReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: scheme %s, %d variables (%d values) loaded", r.Path, r.Scheme, r.Loaded, r.LoadedValues)
	if r.Renamed > 0 {
		fmt.Fprintf(&b, ", %d renamed", r.Renamed)
	}
	if len(r.Fresh) > 0 {
		fmt.Fprintf(&b, ", %d left at initialization (%s)", len(r.Fresh), strings.Join(r.FreshParts, ", "))
	}
	if len(r.Ignored) > 0 {
		fmt.Fprintf(&b, ", %d ignored", len(r.Ignored))
	}
	if len(r.Unexpected) > 0 {
		fmt.Fprintf(&b, ", %d unexpected skipped (first %s)", len(r.Unexpected), r.Unexpected[0])
	}
	return b.String()
}

// ImportWeights reads PyTorch weights from the file at path into a new context holding every
// variable of the DeepArtNet that cfg describes, ready for Build (with ctx.Reuse()),
// SaveCheckpoint, training or export.
//
// The file is a safetensors file or PyTorch's own torch.save file (.pth/.pt: a zip archive with
// a pickled state dict, or the pre-1.6 format; a state dict wrapped in {"state_dict": …} or
// {"model": …} is found; see package torchpth), told apart by their first bytes, not by the
// extension.
//
// The naming scheme is detected from the tensor names (see Scheme): a whole DeepArtNet state
// dict (spec names), only its backbone.features.* (a pretrained backbone: projection, LSTM,
// attention and heads are freshly initialized with the model's normal initializers, and the
// report lists them), torchvision's features.* or timm's efficientnet_b0…b4 names
// (conv_stem, bn1, blocks.s.b.*, conv_head, bn2; a block has an expansion conv exactly when it
// has conv_pwl, and names are matched by name, never by position). F32, F16, BF16 (and F64)
// tensors are read as float32; integer num_batches_tracked tensors and the ImageNet classifier of
// torchvision/timm files are ignored. No layout conversion is needed: the model's variables use
// PyTorch's layouts (conv OIHW, Linear [out, in], LSTM gates i, f, g, o with both biases).
//
// Errors are one line naming the file and the tensor: a file that is neither format, is
// truncated or is not a state dict, names of no known scheme or of several, a tensor whose shape
// differs from the model's (both shapes, e.g. another variant or other class counts), a model
// tensor the file's scheme should have but lacks, a file tensor that matches no model variable
// (the last two are accepted with AllowPartial and listed in the report), a non-float weight, or
// NaN/Inf values.
//
// timm's tf_efficientnet_bN checkpoints carry the same names and shapes but are another
// network (TensorFlow 'SAME' padding on the stem and the strided depthwise convs, BatchNorm eps
// 1e-3): they import without a shape error and compute something else. Names cannot tell them
// apart; a file whose __metadata__ mentions tf_efficientnet (or TensorFlow 'SAME' padding) is
// refused, and otherwise only the user knows which weights they chose.
func ImportWeights(path string, cfg spec.Config, o ImportOptions) (*context.Context, *ImportReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("import %s: model config: %s", path, errtext.OneLine(err))
	}
	f, err := ReadWeights(path)
	if err != nil {
		return nil, nil, err
	}
	ctx, rep, err := importFile(f, path, cfg, o)
	if err != nil {
		return nil, nil, fmt.Errorf("import %s: %s", path, errtext.OneLine(err))
	}
	return ctx, rep, nil
}

// ReadWeights reads a safetensors or torch.save file (told apart by its first bytes) into
// named float32 tensors. Errors are one line naming the file.
func ReadWeights(path string) (*safetensors.File, error) {
	head := make([]byte, 16)
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	n, _ := io.ReadFull(fh, head)
	fh.Close()
	head = head[:n]
	var f *safetensors.File
	switch {
	case torchpth.Sniff(head):
		f, err = torchpth.ReadFile(path)
	case len(head) > 8 && bytes.HasPrefix(bytes.TrimLeft(head[8:], " \t\r\n"), []byte("{")): // header length, JSON header
		f, err = safetensors.ReadFile(path)
	default:
		return nil, fmt.Errorf("weights %s: neither a safetensors file nor a PyTorch torch.save file (.pth/.pt) (first bytes %q)", path, head)
	}
	if err != nil {
		return nil, errors.New(errtext.OneLine(err))
	}
	return f, nil
}

// tfMarkers are __metadata__ substrings that identify TensorFlow-ported EfficientNet weights.
var tfMarkers = []string{"tf_efficientnet", "tf-efficientnet", "padding=same", "'same' padding", "same padding"}

// mapped is one file tensor with its spec name.
type mapped struct {
	file, torch string
	t           *safetensors.Tensor
}

func (m mapped) label() string {
	if m.file == m.torch {
		return fmt.Sprintf("tensor %q", m.file)
	}
	return fmt.Sprintf("tensor %q (%s)", m.file, m.torch)
}

func importFile(f *safetensors.File, path string, cfg spec.Config, o ImportOptions) (*context.Context, *ImportReport, error) {
	rep := &ImportReport{Path: path, Metadata: f.Metadata}
	for k, v := range f.Metadata {
		lv := strings.ToLower(k + "=" + v)
		for _, m := range tfMarkers {
			if strings.Contains(lv, m) {
				return nil, nil, fmt.Errorf("__metadata__ %q = %q says these are TensorFlow-ported EfficientNet weights (tf_efficientnet: 'SAME' padding, BatchNorm eps 1e-3): they would load but compute another network; use torchvision's or timm's efficientnet_bN weights", k, v)
			}
		}
	}
	if len(f.Order) == 0 {
		return nil, nil, errors.New("the file holds no tensors")
	}

	scheme, err := detectScheme(f)
	if err != nil {
		return nil, nil, err
	}
	rep.Scheme = scheme

	// Rename every tensor to its spec name; set aside what is ignored by design.
	var tensorsIn []mapped
	var unknown []string // names of the scheme's namespace that map to nothing
	headIndex := timmHeadIndex(f)
	for _, name := range f.Order {
		t := f.Tensors[name]
		if t.Data == nil && strings.HasSuffix(name, "num_batches_tracked") {
			rep.Ignored = append(rep.Ignored, name)
			continue
		}
		torch, ok, ignore := rename(scheme, name, f, headIndex)
		if ignore {
			rep.Ignored = append(rep.Ignored, name)
			continue
		}
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if torch != name {
			rep.Renamed++
		}
		tensorsIn = append(tensorsIn, mapped{file: name, torch: torch, t: t})
	}

	// The model's variables (created, not initialized).
	ctx := context.New()
	if o.Seed != 0 {
		ctx.SetParam(context.ParamInitialSeed, o.Seed)
	}
	backend, err := engine.NewBackend(engine.GoBackendName)
	if err != nil {
		return nil, nil, fmt.Errorf("GoMLX backend: %w", err)
	}
	defer backend.Finalize()
	if err := catch(func() {
		g := graph.NewGraph(backend, "import_variables")
		defer g.Finalize()
		Build(ctx, cfg, graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 1, 3, 32, 32)))
	}); err != nil {
		return nil, nil, fmt.Errorf("model config cannot build a model: %w", err)
	}
	vars := map[string]*context.Variable{}
	var order []string
	for v := range ctx.IterVariables() {
		if partOf(v.Scope()) == "" {
			continue
		}
		n := TorchName(v.Scope(), v.Name())
		vars[n] = v
		order = append(order, n)
	}

	// Match by name.
	var misShaped, unexpected, badValue []string
	seen := map[string]string{}
	for _, m := range tensorsIn {
		v, ok := vars[m.torch]
		if !ok {
			unexpected = append(unexpected, m.label())
			rep.Unexpected = append(rep.Unexpected, m.file)
			continue
		}
		if prev, dup := seen[m.torch]; dup {
			return nil, nil, fmt.Errorf("tensors %q and %q both map to %s", prev, m.file, m.torch)
		}
		seen[m.torch] = m.file
		want := v.Shape().Dimensions
		if !slices.Equal(m.t.Shape, want) {
			msg := fmt.Sprintf("%s has shape %v, the model (%s) needs %v", m.label(), m.t.Shape, describe(cfg), want)
			if task, ok := classifierTask(m.torch); ok && len(m.t.Shape) > 0 && len(want) > 0 {
				msg += fmt.Sprintf(" (the file has %d %s classes, the config %d)", m.t.Shape[0], task, want[0])
			}
			misShaped = append(misShaped, msg)
			continue
		}
		if m.t.Data == nil {
			badValue = append(badValue, fmt.Sprintf("%s has dtype %s, want F32, F16 or BF16", m.label(), m.t.DType))
			continue
		}
		if n := countNonFinite(m.t.Data); n > 0 {
			badValue = append(badValue, fmt.Sprintf("%s holds %d NaN/Inf values of %d", m.label(), n, len(m.t.Data)))
		}
	}
	for _, n := range unknown {
		unexpected = append(unexpected, fmt.Sprintf("tensor %q (no %s name)", n, scheme))
		rep.Unexpected = append(rep.Unexpected, n)
	}
	// What the scheme must provide: everything, or the backbone.
	var missing []string
	for _, n := range order {
		if _, ok := seen[n]; ok {
			continue
		}
		rep.Fresh = append(rep.Fresh, n)
		if scheme == SchemeDeepArtNet || partOf(vars[n].Scope()) == PartBackbone {
			missing = append(missing, n)
		}
	}

	var problems []string
	problems = append(problems, misShaped...)
	problems = append(problems, badValue...)
	if !o.AllowPartial {
		for _, u := range unexpected {
			problems = append(problems, u+" matches no model variable ("+describe(cfg)+"; --allow-partial skips it)")
		}
		for _, n := range missing {
			problems = append(problems, fmt.Sprintf("model tensor %q (shape %v) missing from the file (%s scheme; --allow-partial keeps it initialized)", n, vars[n].Shape().Dimensions, scheme))
		}
	}
	if len(problems) > 0 {
		msg := problems[0]
		if len(problems) > 1 {
			msg += fmt.Sprintf(" (and %d more: %d mis-shaped, %d bad values, %d unexpected, %d missing)",
				len(problems)-1, len(misShaped), len(badValue), len(unexpected), len(missing))
		}
		if v := guessVariant(tensorsIn); v != "" && (v != cfg.Variant || cfg.WidthMult > 0 || cfg.DepthMult > 0 || cfg.Stages > 0 || cfg.HeadChannels > 0) &&
			(len(misShaped) > 0 || len(missing) > 0) {
			msg += fmt.Sprintf("; the file's backbone looks like efficientnet_%s (try variant %s)", v, v)
		}
		return nil, nil, errors.New(msg)
	}
	if len(unexpected) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d file tensors match no model variable and were skipped (first: %s)", len(unexpected), unexpected[0]))
	}
	if len(missing) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d model tensors missing from the file keep their initialization (first: %s)", len(missing), missing[0]))
	}
	if scheme == SchemeTimm {
		rep.Warnings = append(rep.Warnings, "timm names: efficientnet_bN weights are this network; tf_efficientnet_bN weights have the same names but compute something else (TF 'SAME' padding, BatchNorm eps 1e-3)")
	}

	// Set the loaded values, initialize the rest, and keep every value on the host.
	for _, m := range tensorsIn {
		v, ok := vars[m.torch]
		if !ok {
			continue
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(m.t.Data, m.t.Shape...)); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", m.label(), err)
		}
		rep.Loaded++
		rep.LoadedValues += len(m.t.Data)
	}
	if err := ctx.InitializeVariables(backend, nil); err != nil {
		return nil, nil, fmt.Errorf("initializing the variables the file does not provide: %s", errtext.OneLine(err))
	}
	for v := range ctx.IterVariables() {
		t, err := v.Value()
		if err != nil {
			return nil, nil, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
		}
		t.MaterializeLocal()
		if err := t.InvalidateOnDevice(); err != nil {
			return nil, nil, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
		}
	}
	parts := map[string]bool{}
	for _, n := range rep.Fresh {
		p := partOf(vars[n].Scope())
		if !parts[p] {
			parts[p] = true
			rep.FreshParts = append(rep.FreshParts, p)
		}
	}
	return ctx, rep, nil
}

// guessVariant names the torchvision variant (b0…b4, full 7 stages) whose backbone has the
// file's head conv width and block count, or "" when none does.
func guessVariant(ts []mapped) string {
	blocks := map[string]bool{}
	heads := map[string]int{} // features.{i}.0.weight of 1×1 convs → output channels
	re := regexp.MustCompile(`^backbone\.features\.(\d+)\.(\d+)\.block\.`)
	for _, m := range ts {
		if g := re.FindStringSubmatch(m.torch); g != nil {
			blocks[g[1]+"."+g[2]] = true
		}
		if p := strings.Split(m.torch, "."); len(p) == 5 && p[1] == ScopeFeatures && p[3] == "0" && p[4] == "weight" && len(m.t.Shape) == 4 {
			heads[p[2]] = m.t.Shape[0]
		}
	}
	for _, v := range []string{"b0", "b1", "b2", "b3", "b4"} {
		c := spec.Default()
		c.Variant = v
		a, err := Architecture(c)
		if err != nil {
			continue
		}
		if len(a.Blocks) == len(blocks) && heads[strconv.Itoa(a.HeadIndex)] == a.HeadChannels {
			return v
		}
	}
	return ""
}

// classifierTask reports whether a spec name is a head's last Linear (heads.<task>.3.*), whose
// size is the task's class count.
func classifierTask(torch string) (string, bool) {
	p := strings.Split(torch, ".")
	if len(p) == 4 && p[0] == ScopeHeads && p[2] == "3" {
		return p[1], true
	}
	return "", false
}

// describe names a configuration in errors.
func describe(cfg spec.Config) string {
	s := "variant " + cfg.Variant
	if cfg.WidthMult > 0 || cfg.DepthMult > 0 || cfg.Stages > 0 || cfg.HeadChannels > 0 {
		s += fmt.Sprintf(" width %g depth %g stages %d", cfg.Width(), cfg.Depth(), cfg.NumStages())
	}
	return s
}

func countNonFinite(v []float32) int {
	n := 0
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			n++
		}
	}
	return n
}

// schemeOf classifies one tensor name ("" when it belongs to no known scheme).
func schemeOf(name string) Scheme {
	first, _, _ := strings.Cut(name, ".")
	switch first {
	case ScopeBackbone, ScopeEncoder, ScopeAttention, ScopeHeads:
		return SchemeDeepArtNet
	case "features":
		return SchemeTorchvision
	case "conv_stem", "bn1", "blocks", "conv_head", "bn2":
		return SchemeTimm
	case "classifier":
		if name == "classifier.weight" || name == "classifier.bias" {
			return SchemeTimm
		}
		return SchemeTorchvision
	}
	return ""
}

// detectScheme returns the one scheme of the file's names; names of no scheme are left to the
// matching (they are unexpected tensors).
func detectScheme(f *safetensors.File) (Scheme, error) {
	first := map[Scheme]string{}
	var schemes []Scheme
	backboneOnly := true
	for _, name := range f.Order {
		s := schemeOf(name)
		if s == "" {
			continue
		}
		// A lone ImageNet classifier says nothing; decide by the backbone names.
		if strings.HasPrefix(name, "classifier.") {
			continue
		}
		if _, ok := first[s]; !ok {
			first[s] = name
			schemes = append(schemes, s)
		}
		if s == SchemeDeepArtNet && !strings.HasPrefix(name, ScopeBackbone+"."+ScopeFeatures+".") {
			backboneOnly = false
		}
	}
	switch len(schemes) {
	case 0:
		return "", fmt.Errorf("no tensor has a DeepArtNet, torchvision or timm EfficientNet name (first tensor: %q)", f.Order[0])
	case 1:
	default:
		return "", fmt.Errorf("tensor names mix naming schemes: %q is %s, %q is %s", first[schemes[0]], schemes[0], first[schemes[1]], schemes[1])
	}
	if schemes[0] == SchemeDeepArtNet && backboneOnly {
		return SchemeBackbone, nil
	}
	return schemes[0], nil
}

var timmBlock = regexp.MustCompile(`^blocks\.(\d+)\.(\d+)\.(.+)$`)

// timmHeadIndex is torchvision's index of the head conv for a timm file: its last stage + 2
// (features.0 is the stem, features.1…N the N stages); -1 without blocks.
func timmHeadIndex(f *safetensors.File) int {
	last := -1
	for _, name := range f.Order {
		if m := timmBlock.FindStringSubmatch(name); m != nil {
			if s, err := strconv.Atoi(m[1]); err == nil && s > last {
				last = s
			}
		}
	}
	if last < 0 {
		return -1
	}
	return last + 2
}

// bnParams are the BatchNorm tensor names ({p} in the spec's table).
func isBNParam(p string) bool {
	switch p {
	case "weight", "bias", "running_mean", "running_var", "num_batches_tracked":
		return true
	}
	return false
}

// rename maps a file name of scheme to the spec name. ok is false for a name of no known
// layer; ignore is true for tensors dropped by design (the ImageNet classifier).
func rename(scheme Scheme, name string, f *safetensors.File, headIndex int) (torch string, ok, ignore bool) {
	switch scheme {
	case SchemeDeepArtNet, SchemeBackbone:
		return name, schemeOf(name) == SchemeDeepArtNet, false
	case SchemeTorchvision:
		if strings.HasPrefix(name, "classifier.") {
			return "", false, true
		}
		if !strings.HasPrefix(name, "features.") {
			return "", false, false
		}
		return ScopeBackbone + "." + name, true, false
	}
	// timm
	if name == "classifier.weight" || name == "classifier.bias" {
		return "", false, true
	}
	feat := ScopeBackbone + "." + ScopeFeatures + "."
	head, p, _ := strings.Cut(name, ".")
	switch {
	case name == "conv_stem.weight":
		return feat + "0.0.weight", true, false
	case head == "bn1" && isBNParam(p):
		return feat + "0.1." + p, true, false
	case name == "conv_head.weight" && headIndex > 0:
		return fmt.Sprintf("%s%d.0.weight", feat, headIndex), true, false
	case head == "bn2" && isBNParam(p) && headIndex > 0:
		return fmt.Sprintf("%s%d.1.%s", feat, headIndex, p), true, false
	}
	m := timmBlock.FindStringSubmatch(name)
	if m == nil {
		return "", false, false
	}
	s, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	rest := m[3]
	_, expansion := f.Tensors[fmt.Sprintf("blocks.%d.%d.conv_pwl.weight", s, b)]
	var table map[string]string
	if expansion {
		table = timmExpansion
	} else {
		table = timmNoExpansion
	}
	layer, param, _ := cutLast(rest)
	to, found := table[layer]
	if !found {
		return "", false, false
	}
	switch {
	case strings.HasPrefix(layer, "bn"):
		if !isBNParam(param) {
			return "", false, false
		}
	case strings.HasPrefix(layer, "se."):
		if param != "weight" && param != "bias" {
			return "", false, false
		}
	default: // convs have no bias
		if param != "weight" {
			return "", false, false
		}
	}
	return fmt.Sprintf("%s%d.%d.block.%s.%s", feat, s+1, b, to, param), true, false
}

// cutLast splits "se.conv_reduce.weight" into "se.conv_reduce", "weight".
func cutLast(s string) (string, string, bool) {
	i := strings.LastIndex(s, ".")
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// The spec's timm → torchvision table, inside a block (torchvision names after "block.").
var (
	timmNoExpansion = map[string]string{
		"conv_dw": "0.0", "bn1": "0.1",
		"se.conv_reduce": "1.fc1", "se.conv_expand": "1.fc2",
		"conv_pw": "2.0", "bn2": "2.1",
	}
	timmExpansion = map[string]string{
		"conv_pw": "0.0", "bn1": "0.1",
		"conv_dw": "1.0", "bn2": "1.1",
		"se.conv_reduce": "2.fc1", "se.conv_expand": "2.fc2",
		"conv_pwl": "3.0", "bn3": "3.1",
	}
)
