package train

import (
	"image"
	"sync"
)

// ImageCache keeps decoded images (8-bit RGBA, 4 bytes per pixel) within a memory budget, for
// data sets that decode on demand. It fills on first use and never evicts: training visits the
// images in a fresh random order each epoch, so no eviction policy would hit more often than
// keeping the first ones that fit.
//
// The pixels live in one arena reserved outside the Go heap (an anonymous mapping on Unix,
// whose pages become resident only as they are filled), so the cache adds its budget to the
// process's memory and no more: on the Go heap, GOGC's headroom would double it. A nil
// *ImageCache caches nothing. Safe for concurrent use; Close releases the arena, after which
// the images it returned must no longer be read.
type ImageCache struct {
	mu    sync.RWMutex
	arena []byte
	used  int
	m     map[string]*image.RGBA
	free  func([]byte) error
}

// NewImageCache returns a cache holding at most budget bytes of pixels (≤ 0: nil, no cache).
func NewImageCache(budget int64) (*ImageCache, error) {
	if budget <= 0 {
		return nil, nil
	}
	arena, free, err := reserve(int(budget))
	if err != nil {
		return nil, err
	}
	return &ImageCache{arena: arena, free: free, m: map[string]*image.RGBA{}}, nil
}

func (c *ImageCache) get(key string) *image.RGBA {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[key]
}

// put keeps a copy of m under key if it fits the budget, and returns the image to use (the
// cached copy, or m).
func (c *ImageCache) put(key string, m *image.RGBA) *image.RGBA {
	if c == nil {
		return m
	}
	n := len(m.Pix)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		return old
	}
	if c.arena == nil || c.used+n > len(c.arena) {
		return m
	}
	pix := c.arena[c.used : c.used+n : c.used+n]
	copy(pix, m.Pix)
	c.used += n
	cp := &image.RGBA{Pix: pix, Stride: m.Stride, Rect: m.Rect}
	c.m[key] = cp
	return cp
}

// Stats returns the number of cached images and their bytes.
func (c *ImageCache) Stats() (images int, bytes int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), int64(c.used)
}

// Close releases the arena; the cache then holds nothing.
func (c *ImageCache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.arena == nil {
		return nil
	}
	err := c.free(c.arena)
	c.arena, c.m, c.used = nil, map[string]*image.RGBA{}, 0
	return err
}
