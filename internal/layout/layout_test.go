package layout

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

type real struct {
	a int
	b *string
	c []byte
}

type goodMirror struct {
	a int
	b unsafe.Pointer
	c []byte
}

// shiftedMirror has real's size and field names, but b at another offset.
type shiftedMirror struct {
	a [2]int
	b unsafe.Pointer
	c [2]int
}

type prefixMirror struct {
	a int
	b unsafe.Pointer
}

func TestCheck(t *testing.T) {
	want := []string{"a int", "b *string", "c []uint8"}
	if err := Check(reflect.TypeFor[real](), reflect.TypeFor[goodMirror](), want); err != nil {
		t.Fatalf("matching mirror: %v", err)
	}
	if err := CheckPrefix(reflect.TypeFor[real](), reflect.TypeFor[prefixMirror](), want[:2]); err != nil {
		t.Fatalf("matching prefix: %v", err)
	}
	cases := []struct {
		name   string
		mirror reflect.Type
		want   []string
		msg    string
	}{
		{"type changed", reflect.TypeFor[goodMirror](), []string{"a int", "b *int", "c []uint8"}, `field #1 is "b *string"`},
		{"field missing", reflect.TypeFor[prefixMirror](), want[:2], "has 3 fields"},
		{"offset differs", reflect.TypeFor[shiftedMirror](), want, "at offset 8, artnet's mirror expects \"b *string\" at offset 16"},
	}
	for _, c := range cases {
		err := Check(reflect.TypeFor[real](), c.mirror, c.want)
		if err == nil || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want one line with %q", c.name, err, c.msg)
		}
	}
	if err := CheckPrefix(reflect.TypeFor[real](), reflect.TypeFor[prefixMirror](), []string{"a int", "b *int"}); err == nil {
		t.Error("prefix with a changed type passed")
	}
}
