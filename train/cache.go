package train

import (
	"image"
	"sync"
)

// ImageCache keeps decoded images (8-bit RGBA, 4 bytes per pixel) within a memory budget, for
// data sets that decode on demand. It fills on first use and never evicts: training visits the
// images in a fresh random order each epoch, so no eviction policy would hit more often than
// keeping the first ones that fit. A nil *ImageCache caches nothing. Safe for concurrent use.
type ImageCache struct {
	mu     sync.RWMutex
	budget int64
	used   int64
	m      map[string]*image.RGBA
}

// NewImageCache returns a cache holding at most budget bytes of pixels (≤ 0: nil, no cache).
func NewImageCache(budget int64) *ImageCache {
	if budget <= 0 {
		return nil
	}
	return &ImageCache{budget: budget, m: map[string]*image.RGBA{}}
}

func (c *ImageCache) get(key string) *image.RGBA {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[key]
}

// put keeps m under key if it fits the budget. m must not be modified afterwards.
func (c *ImageCache) put(key string, m *image.RGBA) {
	if c == nil {
		return
	}
	n := int64(len(m.Pix))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok || c.used+n > c.budget {
		return
	}
	c.m[key] = m
	c.used += n
}

// Stats returns the number of cached images and their bytes.
func (c *ImageCache) Stats() (images int, bytes int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.used
}
