//go:build unix

package train

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/wikiart"
)

// BenchmarkPipeline measures the training input pipeline alone — decode → RandomResizedCrop
// at the image's size → flip → jitter → normalize → batch, through batchStream, no model — at
// the default model's 224 px, with 1 worker and with all cores (GOMAXPROCS), without a cache.
// It reports images/s, images/s per worker, and images per CPU-second of the whole process
// (user + system time from getrusage: the per-core rate, which other load on the machine does
// not change much), i.e. how many cores keep a GPU fed:
//
//	go test ./train -run XXX -bench Pipeline -benchtime 256x
//
// Data: the full WikiArt set through internal/testenv (skipped without it; 224×224 JPEGs),
// and full-size paintings: the JPEGs and PNGs of $ARTNET_BENCH_IMAGES (e.g. ../shared/paintings),
// else testdata/paintings.
func BenchmarkPipeline(b *testing.B) {
	cfg := spec.Default() // 224 px
	cfg.Classes = map[string][]string{"style": spec.Numbered("style", 27), "genre": spec.Numbered("genre", 10), "artist": spec.Numbered("artist", 23)}
	sets := map[string]func(b *testing.B) (string, []wikiart.Sample){
		"wikiart": func(b *testing.B) (string, []wikiart.Sample) {
			root := testenv.WikiArt(b)
			tr, _, _, rep, err := wikiart.Load(wikiart.Options{Root: root, Disjoint: true})
			if err != nil {
				b.Fatal(err)
			}
			return rep.Images, tr.Samples
		},
		"paintings": func(b *testing.B) (string, []wikiart.Sample) {
			dir := os.Getenv("ARTNET_BENCH_IMAGES")
			if dir == "" {
				dir = testenv.Testdata(b, "paintings")
			}
			var s []wikiart.Sample
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if n := strings.ToLower(e.Name()); strings.HasSuffix(n, ".jpg") || strings.HasSuffix(n, ".png") {
					s = append(s, wikiart.Sample{Path: e.Name(), Labels: [3]int{0, -1, -1}})
				}
			}
			if len(s) == 0 {
				b.Skipf("no JPEG or PNG in %s", dir)
			}
			return dir, s
		},
	}
	for _, name := range []string{"wikiart", "paintings"} {
		for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(name+"/workers="+strconv.Itoa(workers), func(b *testing.B) {
				images, samples := sets[name](b)
				ds, err := NewWikiArt(context.Background(), samples, WikiArtOptions{Images: images, Config: cfg, Augment: true, Seed: 1, Jitter: 0.2})
				if err != nil {
					b.Fatal(err)
				}
				const batch = 32
				steps := max(b.N/batch, 1)
				order := &epochOrder{n: ds.Len(), seed: 1}
				b.ResetTimer()
				began, cpu0 := time.Now(), cpuSeconds()
				s := newBatchStream(context.Background(), ds, cfg, order, batch, 0, steps, workers, 2)
				for range steps {
					p, err := s.next(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					s.release(p)
				}
				s.close()
				sec, cpu := time.Since(began).Seconds(), cpuSeconds()-cpu0
				ips := float64(steps*batch) / sec
				b.ReportMetric(ips, "images/s")
				b.ReportMetric(ips/float64(workers), "images/s/worker")
				b.ReportMetric(float64(steps*batch)/cpu, "images/cpu-s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// cpuSeconds is the CPU time (user + system, all threads) the process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
