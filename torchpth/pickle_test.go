package torchpth

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestPickleLenRefusesHugeClaims: length fields that claim more than the pickle holds are
// refused before the unpickler would allocate them.
func TestPickleLenRefusesHugeClaims(t *testing.T) {
	huge := make([]byte, 9)
	huge[0] = 0x8e // BINBYTES8
	binary.LittleEndian.PutUint64(huge[1:], 1<<40)
	frame := append([]byte{0x80, 2, 0x95}, make([]byte, 8)...)
	binary.LittleEndian.PutUint64(frame[3:], 1<<50)
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"BINBYTES8 1 TiB": {huge, "claims 1099511627776 bytes"},
		"FRAME":           {frame, "claims"},
		"BINUNICODE":      {[]byte("X\xff\xff\xff\x7fabc."), "claims 2147483647 bytes"},
		"no STOP":         {[]byte("\x80\x02K\x05"), "no STOP"},
		"bad opcode":      {[]byte("\x80\x02\xff."), "unknown opcode 0xff"},
		"open line":       {[]byte("cos\nsystem"), "unterminated line"},
	} {
		if _, err := pickleLen(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	ok := []byte("\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.trailing")
	if n, err := pickleLen(ok); err != nil || n != len(ok)-len("trailing") {
		t.Errorf("valid pickle: length %d, %v; want %d", n, err, len(ok)-len("trailing"))
	}
}
