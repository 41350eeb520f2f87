//go:build !unix

package train

// reserve allocates the arena on the Go heap where anonymous mappings are not available.
func reserve(size int) ([]byte, func([]byte) error, error) {
	return make([]byte, size), func([]byte) error { return nil }, nil
}
