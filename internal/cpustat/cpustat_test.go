package cpustat

import "testing"

func TestProcessGrows(t *testing.T) {
	a := Process()
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i % 7
	}
	b := Process()
	if a <= 0 || b <= a {
		t.Errorf("CPU time %v then %v (x %d): want positive and growing", a, b, x)
	}
}
