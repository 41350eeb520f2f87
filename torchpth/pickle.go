package torchpth

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// pickleLen walks the opcodes of the pickle at the start of b without running it and returns
// its length (through STOP). It checks every length-prefixed argument against the bytes left, so
// that the unpickler, which allocates what a length field claims before reading, is only ever
// given pickles whose claims fit in the file (a claim of many gigabytes would otherwise end the
// process: Go's out-of-memory is not a recoverable panic).
func pickleLen(b []byte) (int, error) {
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-pos) {
			return fmt.Errorf("opcode at byte %d claims %d bytes, %d left (truncated or damaged)", pos, n, len(b)-pos)
		}
		return nil
	}
	// sized reads a k-byte little-endian length at pos, then skips that many bytes.
	sized := func(k int) error {
		if err := need(uint64(k)); err != nil {
			return err
		}
		var n uint64
		switch k {
		case 1:
			n = uint64(b[pos])
		case 4:
			n = uint64(binary.LittleEndian.Uint32(b[pos:]))
		case 8:
			n = binary.LittleEndian.Uint64(b[pos:])
		}
		pos += k
		if err := need(n); err != nil {
			return err
		}
		pos += int(n)
		return nil
	}
	line := func() error {
		for i := pos; i < len(b); i++ {
			if b[i] == '\n' {
				pos = i + 1
				return nil
			}
		}
		return fmt.Errorf("opcode at byte %d: unterminated line (truncated or damaged)", pos)
	}
	for pos < len(b) {
		op := b[pos]
		pos++
		var err error
		switch op {
		case '.': // STOP
			return pos, nil
		case '(', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
		case 'K', 'h', 'q', 0x82, 0x80: // BININT1, BINGET, BINPUT, EXT1, PROTO
			err = need(1)
			pos++
		case 'M', 0x83: // BININT2, EXT2
			err = need(2)
			pos += 2
		case 'J', 'j', 'r', 0x84: // BININT, LONG_BINGET, LONG_BINPUT, EXT4
			err = need(4)
			pos += 4
		case 'G': // BINFLOAT
			err = need(8)
			pos += 8
		case 0x95: // FRAME: an 8-byte frame length; the frame's opcodes follow inline
			if err = need(8); err == nil {
				err = need(binary.LittleEndian.Uint64(b[pos:]) + 8)
				pos += 8
			}
		case 'U', 'C', 0x8c, 0x8a: // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE, LONG1
			err = sized(1)
		case 'T', 'X', 'B', 0x8b: // BINSTRING, BINUNICODE, BINBYTES, LONG4
			err = sized(4)
		case 0x8d, 0x8e, 0x96: // BINUNICODE8, BINBYTES8, BYTEARRAY8
			err = sized(8)
		case 'I', 'L', 'S', 'V', 'F', 'g', 'p', 'P': // text arguments up to a newline
			err = line()
		case 'c', 'i': // GLOBAL, INST: module and name lines
			if err = line(); err == nil {
				err = line()
			}
		default:
			return 0, fmt.Errorf("unknown opcode 0x%02x at byte %d", op, pos-1)
		}
		if err != nil {
			return 0, err
		}
		if pos > len(b) {
			return 0, errors.New("truncated (ends inside an opcode)")
		}
	}
	return 0, errors.New("no STOP opcode (truncated)")
}
