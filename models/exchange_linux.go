//go:build linux && (amd64 || arm64)

package models

import (
	"runtime"
	"syscall"
	"unsafe"
)

const renameExchange = 1 << 1 // RENAME_EXCHANGE

// exchange atomically swaps the directory entries a and b (renameat2 RENAME_EXCHANGE).
func exchange(a, b string) error {
	nr := uintptr(316) // amd64 SYS_RENAMEAT2
	if runtime.GOARCH == "arm64" {
		nr = 276
	}
	pa, err := syscall.BytePtrFromString(a)
	if err != nil {
		return err
	}
	pb, err := syscall.BytePtrFromString(b)
	if err != nil {
		return err
	}
	const atFDCWD = ^uintptr(99) // AT_FDCWD = -100
	_, _, errno := syscall.Syscall6(nr, atFDCWD, uintptr(unsafe.Pointer(pa)), atFDCWD, uintptr(unsafe.Pointer(pb)), renameExchange, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
