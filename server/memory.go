package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrMemoryBudget is returned (wrapped) when a request could not reserve the memory it needs
// within Config.AdmitWait; the server answers 503 with Retry-After.
var ErrMemoryBudget = errors.New("memory budget exhausted")

// memBudget is the bytes that requests may hold at once (bodies, decoded images, v2 tensors,
// overlays): a counting semaphore in bytes. It is not FIFO on purpose: a reservation that
// fits goes ahead of a larger one that waits, so one waiting 600 MB decode does not hold back
// every small request behind it (golang.org/x/sync/semaphore is FIFO, hence not used); a
// large request may starve under load, and then gets 503 after Config.AdmitWait.
type memBudget struct {
	total int64
	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed and replaced by each release
}

func newMemBudget(total int64) *memBudget {
	return &memBudget{total: total, freed: make(chan struct{})}
}

func (m *memBudget) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// acquire reserves n bytes, waiting at most wait (or until ctx ends) for them to be freed.
func (m *memBudget) acquire(ctx context.Context, n int64, wait time.Duration) error {
	if n <= 0 {
		return nil
	}
	if n > m.total {
		return clientErr(http.StatusRequestEntityTooLarge, "this request needs %s of memory, more than the server's whole budget for requests (%s)", mib(n), mib(m.total))
	}
	var timer <-chan time.Time
	for {
		m.mu.Lock()
		if m.used+n <= m.total {
			m.used += n
			m.mu.Unlock()
			return nil
		}
		freed, used := m.freed, m.used
		m.mu.Unlock()
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-freed:
		case <-timer:
			return fmt.Errorf("%w: %s needed, %s of %s in use for %v", ErrMemoryBudget, mib(n), mib(used), mib(m.total), wait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *memBudget) release(n int64) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	close(m.freed)
	m.freed = make(chan struct{})
	m.mu.Unlock()
}

// reservation is what one request holds of the budget; release gives all of it back.
type reservation struct {
	m    *memBudget
	wait time.Duration
	n    int64
}

func (r *reservation) grow(ctx context.Context, n int64) error {
	if r.n+n > r.m.total { // could never fit, even alone
		return clientErr(http.StatusRequestEntityTooLarge, "this request needs %s of memory, more than the server's whole budget for requests (%s)", mib(r.n+n), mib(r.m.total))
	}
	if err := r.m.acquire(ctx, n, r.wait); err != nil {
		return err
	}
	r.n += n
	return nil
}

func (r *reservation) shrink(n int64) {
	n = min(n, r.n)
	r.m.release(n)
	r.n -= n
}

func (r *reservation) release() { r.shrink(r.n) }

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// DefaultMemBudget is the default Config.MemBudget: half of the memory available now
// (/proc/meminfo MemAvailable), or three quarters of the cgroup's limit when that is smaller;
// 2 GiB where neither can be read.
func DefaultMemBudget() int64 {
	b := int64(0)
	if avail := meminfo("MemAvailable"); avail > 0 {
		b = avail / 2
	}
	if lim := cgroupLimit(); lim > 0 && (b == 0 || lim*3/4 < b) {
		b = lim * 3 / 4
	}
	if b <= 0 {
		b = 2 << 30
	}
	return b
}

// meminfo returns a /proc/meminfo field in bytes (0 if absent).
func meminfo(field string) int64 { return procField("/proc/meminfo", field) }

// ProcessMemory returns the process's resident set size now (VmRSS) and its peak (VmHWM), in
// bytes, from /proc/self/status; 0 where they cannot be read (not Linux).
func ProcessMemory() (rss, peak int64) {
	return procField("/proc/self/status", "VmRSS"), procField("/proc/self/status", "VmHWM")
}

// procField reads "Field:   123 kB" from a /proc file, in bytes.
func procField(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		return n
	}
	return 0
}

// cgroupLimit is the memory limit of this process's cgroup (v2 memory.max, else v1
// memory.limit_in_bytes), 0 when unlimited or unknown.
func cgroupLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited" 2^63-4096
			return 0
		}
		return n
	}
	return 0
}

// memGauges are the budget's Prometheus gauges.
func (s *Server) memGauges() []prometheus.Collector {
	g := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	return []prometheus.Collector{
		g("artnet_memory_budget_bytes", "Memory requests may reserve at once (MemBudget less the base RSS and RunMem).", func() float64 { return float64(s.mem.total) }),
		g("artnet_memory_reserved_bytes", "Memory reserved by requests now.", func() float64 { return float64(s.mem.inUse()) }),
		g("artnet_body_reads", "Request bodies being read now.", func() float64 { return float64(len(s.bodySlots)) }),
		g("artnet_process_peak_rss_bytes", "Peak resident set size of the process (VmHWM).", func() float64 { _, p := ProcessMemory(); return float64(p) }),
	}
}
