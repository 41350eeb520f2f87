package preprocess

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/testenv"
)

// TestMain runs every test twice where libjpeg-turbo is loaded: with it, then with the
// image/jpeg fallback (ARTNET_JPEG=go runs only the fallback). Benchmarks and fuzzing run
// once, with the decoder ARTNET_JPEG selects.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	once := flagSet("test.bench") || flagSet("test.fuzz")
	if code == 0 && !once && turboEnabled() {
		fmt.Println("preprocess: the same tests again with the Go image/jpeg fallback")
		forceGoJPEG = true
		code = m.Run()
		forceGoJPEG = false
	}
	os.Exit(code)
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}

// needTurbo skips a test of the libjpeg-turbo path where the library is absent.
func needTurbo(t testing.TB) {
	t.Helper()
	if path, why := loadTurbo(); path == "" {
		testenv.Missing(t, "libjpeg-turbo ("+why+")", "apt-get install libturbojpeg0")
	}
}

func jpegFixtures(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var good []string
	for _, p := range paths {
		if !strings.HasPrefix(filepath.Base(p), "bad-") {
			good = append(good, p)
		}
	}
	if len(good) < 10 {
		t.Fatalf("only %d JPEG fixtures in %s", len(good), fixtureDir)
	}
	return good
}

func decodePath(t *testing.T, path string, o Options, jp jpegPath) *image.RGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := decodeWith(f, o, jp)
	if err != nil {
		t.Fatalf("%s (%+v): %v", path, jp, err)
	}
	return m
}

func TestJPEGDecoder(t *testing.T) {
	d := JPEGDecoder()
	if forceGoJPEG {
		if d != "Go image/jpeg (ARTNET_JPEG=go)" {
			t.Errorf("JPEGDecoder() = %q with the fallback forced", d)
		}
		return
	}
	if path, why := loadTurbo(); path != "" {
		if !strings.HasPrefix(d, "libjpeg-turbo (") || !strings.Contains(d, path) {
			t.Errorf("JPEGDecoder() = %q, want libjpeg-turbo naming %s", d, path)
		}
	} else if !strings.HasPrefix(d, "Go image/jpeg (") || !strings.Contains(d, why) {
		t.Errorf("JPEGDecoder() = %q, want the fallback and why (%s)", d, why)
	}
}

// TestTurboVsGo holds the two decoders to each other on every JPEG fixture: the same size,
// pixels within jpegTolerance levels (the IDCTs differ), mean difference under 0.5 levels;
// CMYK takes image/jpeg on both paths and must be identical.
func TestTurboVsGo(t *testing.T) {
	needTurbo(t)
	for _, p := range jpegFixtures(t) {
		a := decodePath(t, p, Default(), jpegPath{turbo: true})
		b := decodePath(t, p, Default(), jpegPath{})
		if a.Rect != b.Rect {
			t.Errorf("%s: libjpeg-turbo %v, image/jpeg %v", p, a.Rect, b.Rect)
			continue
		}
		maxD, sum := 0, 0
		for i := range a.Pix {
			d := int(a.Pix[i]) - int(b.Pix[i])
			d = max(d, -d)
			maxD = max(maxD, d)
			sum += d
		}
		mean := float64(sum) / float64(len(a.Pix)*3/4)
		tol := jpegTolerance
		if strings.HasSuffix(p, "cmyk.jpg") {
			tol = 0
		}
		if maxD > tol || mean > 0.5 {
			t.Errorf("%s: libjpeg-turbo vs image/jpeg: max %d levels, mean %.3f; want ≤ %d, ≤ 0.5", p, maxD, mean, tol)
		} else if testing.Verbose() {
			t.Logf("%s: max %d, mean %.3f", p, maxD, mean)
		}
	}
}

// TestDraftAndFullMatchPillow: pil-420.jpg through Resize(16) + CenterCrop(16) as Pillow
// computes it decoding at full size (torchvision's path) and after Image.draft (1/2 DCT
// scaling). libjpeg-turbo reproduces both exactly; image/jpeg is within jpegTolerance of
// the full-size one.
func TestDraftAndFullMatchPillow(t *testing.T) {
	o := Options{ImageSize: 16, ResizeSize: 16, Std: [3]float32{1, 1, 1}}
	path := fixture("pil-420.jpg")
	if s := draftScale(45, 37, o); s != 2 {
		t.Fatalf("draftScale(45, 37) = %d, want 2", s)
	}
	cases := []struct {
		ref string
		jp  jpegPath
		tol int
	}{
		{"pil-420-full.rgb", jpegPath{turbo: true}, 0},
		{"pil-420-draft.rgb", jpegPath{turbo: true, draft: true}, 0},
		{"pil-420-full.rgb", jpegPath{}, jpegTolerance},
		{"pil-420-full.rgb", jpegPath{draft: true}, jpegTolerance}, // image/jpeg cannot draft: full size
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/turbo=%v/draft=%v", c.ref, c.jp.turbo, c.jp.draft), func(t *testing.T) {
			if c.jp.turbo {
				needTurbo(t)
			}
			ref, err := os.ReadFile(fixture(c.ref))
			if err != nil {
				t.Fatal(err)
			}
			m := decodePath(t, path, o, c.jp)
			wantW := 45
			if c.jp.turbo && c.jp.draft {
				wantW = 23
			}
			if m.Rect.Dx() != wantW {
				t.Fatalf("decoded width %d, want %d", m.Rect.Dx(), wantW)
			}
			if maxD := maxLevelDiff16(ToTensor(m, o), ref); maxD > c.tol {
				t.Errorf("max difference from Pillow %d levels, want ≤ %d", maxD, c.tol)
			}
		})
	}
	// Only images at least twice the resized size are drafted, by 2, 4 or 8 as Pillow does.
	d := Default()
	for _, c := range []struct{ w, h, want int }{
		{752, 600, 2}, {511, 511, 1}, {512, 512, 2}, {1504, 1200, 4}, {4438, 3500, 8}, {9000, 600, 2}, {300, 5000, 1},
	} {
		if got := draftScale(c.w, c.h, d); got != c.want {
			t.Errorf("draftScale(%d, %d) = %d, want %d", c.w, c.h, got, c.want)
		}
	}
}

// TestTurboErrors: damaged JPEGs give one-line errors wrapping the sentinels on the
// libjpeg-turbo path, and data far beyond what the header's pixels can need is refused.
func TestTurboErrors(t *testing.T) {
	needTurbo(t)
	q, err := os.ReadFile(fixture("quad.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sos := bytes.Index(q, []byte{0xff, 0xda})
	huge := bytes.Clone(q) // the frame header declares 60000×60000: refused before decoding
	sof := bytes.Index(huge, []byte{0xff, 0xc0})
	copy(huge[sof+5:], []byte{0xea, 0x60, 0xea, 0x60})
	cases := []struct {
		name     string
		data     []byte
		sentinel error
	}{
		{"over the pixel cap", huge, ErrTooManyPixels},
		{"cut in the scan", q[:sos+40], ErrTruncated},
		{"cut after the frame header", q[:sos], ErrTruncated},
		{"too much data", append(bytes.Clone(q[:len(q)-2]), make([]byte, 8*32*16+2<<20)...), ErrCorrupt},
	}
	for _, c := range cases {
		_, err := decodeWith(bytes.NewReader(c.data), small(), jpegPath{turbo: true})
		if !errors.Is(err, c.sentinel) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "JPEG") {
			t.Errorf("%s: err = %v, want one line naming JPEG wrapping %v", c.name, err, c.sentinel)
		}
	}
	// Garbage after the scan data (libjpeg warns about it) still decodes, as in Pillow.
	bad := bytes.Clone(q)
	bad = append(bad[:len(bad)-2:len(bad)-2], append([]byte{1, 2, 3}, 0xff, 0xd9)...)
	if _, err := decodeWith(bytes.NewReader(bad), small(), jpegPath{turbo: true}); err != nil {
		t.Errorf("extraneous bytes before EOI: %v", err)
	}
}

// TestTurboReleasesMemory decodes good and bad JPEGs many times: a TurboJPEG handle leaked on
// any path (about 10 KB with libjpeg's pools) would grow the resident set by tens of MB.
func TestTurboReleasesMemory(t *testing.T) {
	needTurbo(t)
	q, err := os.ReadFile(fixture("pil-420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sos := bytes.Index(q, []byte{0xff, 0xda})
	inputs := [][]byte{q, q[:sos+50], q[:sos+2]}
	run := func(n int) {
		for i := 0; i < n; i++ {
			_, _ = decodeWith(bytes.NewReader(inputs[i%len(inputs)]), small(), jpegPath{turbo: true})
		}
		runtime.GC()
	}
	run(500)
	// The C heap's bytes in use (glibc's mallinfo2) see a leaked TurboJPEG handle or buffer
	// exactly; RSS, the fallback where mallinfo2 is missing, also moves with the Go heap.
	if c0 := cMallocInUse(); c0 >= 0 {
		run(6000)
		if grew := cMallocInUse() - c0; grew > 256<<10 {
			t.Errorf("C heap in use grew by %d bytes over 6000 decodes: a C resource is not released", grew)
		}
		return
	}
	before := rssKiB(t)
	run(6000)
	if grew := rssKiB(t) - before; grew > 16<<10 {
		t.Errorf("RSS grew by %d KiB over 6000 decodes: a C resource is not released", grew)
	}
}

func rssKiB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// FuzzDecodeJPEG feeds mutated JPEG fixtures to both decoders: neither may crash or panic,
// errors are one line, and where both decode, the sizes agree and the tensors are finite.
func FuzzDecodeJPEG(f *testing.F) {
	addSeeds(f, jpegFixtures(f))
	o := small()
	o.MaxPixels = 1 << 16 // keep each input cheap
	turbo := turboEnabled()
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []*image.RGBA
		for _, jp := range []jpegPath{{turbo: turbo}, {turbo: turbo, draft: true}, {}} {
			m, err := decodeWith(bytes.NewReader(data), o, jp)
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("%+v: multi-line error %q", jp, err)
				}
				got = append(got, nil)
				continue
			}
			checkFinite(t, ToTensor(m, o))
			got = append(got, m)
		}
		if got[0] != nil && got[2] != nil && got[0].Rect != got[2].Rect {
			t.Fatalf("libjpeg-turbo decodes %v, image/jpeg %v", got[0].Rect, got[2].Rect)
		}
	})
}

// TestTurboScanLimit: a progressive JPEG repeating its last scan 600 times is refused by
// libjpeg-turbo (TJFLAG_LIMITSCANS: more than 500 scans) instead of costing 600 passes.
func TestTurboScanLimit(t *testing.T) {
	needTurbo(t)
	p, err := os.ReadFile(fixture("pil-progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	last := bytes.LastIndex(p, []byte{0xff, 0xda})
	scan := p[last : len(p)-2] // the last SOS segment and its entropy-coded data, before EOI
	var buf bytes.Buffer
	buf.Write(p[:len(p)-2])
	for i := 0; i < 600; i++ {
		buf.Write(scan)
	}
	buf.Write([]byte{0xff, 0xd9})
	_, err = decodeWith(bytes.NewReader(buf.Bytes()), small(), jpegPath{turbo: true})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "500 scans") {
		t.Errorf("600 extra scans: err = %v, want ErrCorrupt about 500 scans", err)
	}
}

// TestTurboSlots: with every libjpeg-turbo slot taken, a decode waits; freeing one lets it run.
func TestTurboSlots(t *testing.T) {
	needTurbo(t)
	q, err := os.ReadFile(fixture("quad.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	slots := turboSlots()
	if cap(slots) != max(1, runtime.GOMAXPROCS(0)) {
		t.Fatalf("%d slots, want GOMAXPROCS = %d", cap(slots), runtime.GOMAXPROCS(0))
	}
	for i := 0; i < cap(slots); i++ {
		slots <- struct{}{}
	}
	done := make(chan error, 1)
	go func() {
		_, err := decodeWith(bytes.NewReader(q), small(), jpegPath{turbo: true})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("decoded (err %v) while all %d slots were taken", err, cap(slots))
	case <-time.After(100 * time.Millisecond):
	}
	for i := 0; i < cap(slots); i++ {
		<-slots
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOptionsDraft: Options.Draft reaches the decoder through the public API — DecodeFile gives
// Pillow-with-draft's tensor with it and Pillow's full-size one without it (libjpeg-turbo).
func TestOptionsDraft(t *testing.T) {
	if forceGoJPEG {
		t.Skip("the image/jpeg pass (TestMain): image/jpeg cannot draft")
	}
	if !turboEnabled() {
		testenv.Missing(t, "libjpeg-turbo (image/jpeg cannot draft)", "apt-get install libturbojpeg0")
	}
	for _, c := range []struct {
		draft bool
		ref   string
	}{{false, "pil-420-full.rgb"}, {true, "pil-420-draft.rgb"}} {
		o := Options{ImageSize: 16, ResizeSize: 16, Std: [3]float32{1, 1, 1}, Draft: c.draft}
		x, err := DecodeFile(fixture("pil-420.jpg"), o)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := os.ReadFile(fixture(c.ref))
		if err != nil {
			t.Fatal(err)
		}
		if maxD := maxLevelDiff16(x, ref); maxD != 0 {
			t.Fatalf("Draft=%v: max difference from %s %d levels, want 0", c.draft, c.ref, maxD)
		}
	}
}

// maxLevelDiff16 is the largest difference, in 8-bit levels, between a 16×16 CHW tensor of
// values in [0, 1] (mean 0, std 1) and Pillow's interleaved RGB bytes ref.
func maxLevelDiff16(x []float32, ref []byte) int {
	maxD := 0
	for y := 0; y < 16; y++ {
		for xx := 0; xx < 16; xx++ {
			for k := 0; k < 3; k++ {
				d := int(math.Round(float64(x[k*256+y*16+xx])*255)) - int(ref[(y*16+xx)*3+k])
				maxD = max(maxD, d, -d)
			}
		}
	}
	return maxD
}
