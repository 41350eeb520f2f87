package server

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/artnet/artnet/internal/testenv"
)

// chromium finds the browser; without one the test skips with one line (fails with
// ARTNET_REQUIRE_DEPS=1, as in CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "headless Chromium for the web page test", "apt-get install chromium")
	return ""
}

// TestWebPage drives GET / in headless Chromium: it uploads a real painting through the file
// input, then reads the labels the page shows and checks that the heatmap image loaded.
func TestWebPage(t *testing.T) {
	exe := chromium(t)
	painting := testenv.Testdata(t, testenv.StarryNight)
	data, err := os.ReadFile(painting)
	if err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 20
	r := serve(t, cfg, m, nil)
	want := expected(t, m, data, "van-gogh_the-starry-night.jpg", 5)

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	err = chromedp.Do(ctx,
		chromedp.Navigate(r.url+"/"),
		chromedp.WaitReady(chromedp.ID("file")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{painting}),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	// The page's status line ends in "done: …" or "error: …".
	status, err := chromedp.Run(ctx, chromedp.Poll[string](`(s => /^(done|error)/.test(s) && s)(document.getElementById("status").textContent)`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("browser: waiting for the prediction: %v", err)
	}
	tasks, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#results .task")).map(s =>
		s.dataset.task + ":" + Array.from(s.querySelectorAll(".label")).map(l => l.textContent).join(","))`))
	if err != nil {
		t.Fatal(err)
	}
	natural, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("heatmap").naturalWidth`))
	if err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#results li").length`))
	if err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("ARTNET_SCREENSHOT"); p != "" { // to look at the page
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 700)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if status != "done: van-gogh_the-starry-night.jpg" {
		t.Errorf("status %q, want \"done: van-gogh_the-starry-night.jpg\"", status)
	}
	var wantTasks []string
	for _, task := range []string{"style", "genre", "artist"} {
		var labels []string
		for _, s := range (*want.Task(task)).TopK {
			labels = append(labels, s.Label)
		}
		wantTasks = append(wantTasks, task+":"+strings.Join(labels, ","))
	}
	if strings.Join(tasks, "|") != strings.Join(wantTasks, "|") {
		t.Errorf("page shows\n %q\nwant\n %q", tasks, wantTasks)
	}
	if natural != 752 {
		t.Errorf("heatmap naturalWidth %d, want the painting's 752", natural)
	}
	if shown != 15 {
		t.Errorf("%d list items, want 3 tasks × top-5", shown)
	}
}
