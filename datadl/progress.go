package datadl

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress receives one file's progress at a time: Start, Add for every chunk, Finish.
type Progress interface {
	// Start begins a file of which have bytes are already there; total is -1 when unknown.
	Start(name string, have, total int64)
	Add(n int64)
	Finish()
}

// LogProgress logs bytes, percentage and rate every Every (0 → 10 s) and at the end; for
// logs and pipes, where a bar would be noise.
type LogProgress struct {
	Log   *slog.Logger
	Every time.Duration

	mu                sync.Mutex
	name              string
	have, got, total  int64
	began, lastReport time.Time
}

func (p *LogProgress) logger() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// Start implements Progress.
func (p *LogProgress) Start(name string, have, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name, p.have, p.got, p.total = name, have, 0, total
	p.began, p.lastReport = time.Now(), time.Now()
	p.logger().Info("downloading", "file", name, "from_byte", have, "size", sizeText(total))
}

// Add implements Progress.
func (p *LogProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got += n
	every := p.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	if time.Since(p.lastReport) >= every {
		p.lastReport = time.Now()
		p.report("downloading")
	}
}

// Finish implements Progress.
func (p *LogProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.report("transfer ended")
}

func (p *LogProgress) report(msg string) {
	sec := time.Since(p.began).Seconds()
	rate := 0.0
	if sec > 0 {
		rate = float64(p.got) / sec
	}
	args := []any{"file", p.name, "bytes", p.have + p.got, "size", sizeText(p.total), "rate", fmt.Sprintf("%.2f MB/s", rate/1e6)}
	if p.total > 0 {
		args = append(args, "percent", fmt.Sprintf("%.1f", 100*float64(p.have+p.got)/float64(p.total)))
	}
	p.logger().Info(msg, args...)
}

func sizeText(n int64) string {
	if n < 0 {
		return "unknown"
	}
	if n < 10_000_000 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// BarProgress draws a progress bar with bytes and rate on w (a terminal).
type BarProgress struct {
	W   io.Writer
	bar *progressbar.ProgressBar
}

// Start implements Progress.
func (p *BarProgress) Start(name string, have, total int64) {
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.W),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.W) }),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
	)
	if have > 0 {
		_ = p.bar.Set64(have)
	}
}

// Add implements Progress.
func (p *BarProgress) Add(n int64) {
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// Finish implements Progress.
func (p *BarProgress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
