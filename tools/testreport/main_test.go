package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReport feeds the JSON of a real `go test -json` run of the package's own fixture test
// (testdata/fixture: one pass, two skips with the same reason, one with another, one failure;
// testdata/notests: a package without tests).
func TestReport(t *testing.T) {
	cmd := exec.Command("go", "test", "-count=1", "-json", "./testdata/fixture", "./testdata/notests")
	js, _ := cmd.Output() // the fixture fails on purpose
	if len(js) == 0 {
		t.Fatal("no output from go test -json ./testdata/fixture")
	}
	var b strings.Builder
	failed, err := report(strings.NewReader(string(js)), &b)
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !failed {
		t.Errorf("report missed the failure:\n%s", out)
	}
	for _, want := range []string{
		"fixture_test.go:", "the failure shows", // the failing test's output
		"skipped: 3 test(s), by reason:\n",
		"  needs a frob: apt-get install frob — ", // the shared reason, first (two tests)
		"fixture.TestSkipA, ",
		"  needs a widget — ",
		"FAIL\t", // the package result
		"?   \tgithub.com/artnet/artnet/tools/testreport/testdata/notests\t[no test files]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"=== RUN", "--- PASS", "passing test output", "no reason given", "notests."} {
		if strings.Contains(out, not) {
			t.Errorf("report shows %q, which go test without -v does not:\n%s", not, out)
		}
	}
	if _, err := report(strings.NewReader(""), &b); err == nil {
		t.Error("empty input: want an error")
	}
}
