//go:build unix

package train

import (
	"fmt"
	"syscall"
)

// reserve maps size bytes of anonymous memory (pages are resident only once written).
func reserve(size int) ([]byte, func([]byte) error, error) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, nil, fmt.Errorf("image cache: reserving %d bytes: %w", size, err)
	}
	return b, syscall.Munmap, nil
}
