package preprocess

import (
	"encoding/binary"
	"os"
	"testing"
)

func TestZZDump(t *testing.T) {
	p := os.Getenv("DUMP_IN")
	if p == "" {
		t.Skip()
	}
	o := Default()
	o.Mean, o.Std = [3]float32{}, [3]float32{1, 1, 1}
	x, err := DecodeFile(p, o)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(os.Getenv("DUMP_OUT"))
	binary.Write(f, binary.LittleEndian, x)
	f.Close()
}
