// Command testreport reads `go test -json` on standard input and prints what `go test` prints
// without -v — package results, the output of failing tests, build errors — followed by one
// line per skip reason naming the tests it skipped: `make test` ends with these, so a missing
// tool (Chromium, python3-onnx, OpenBLAS, the WikiArt images, …) is named in the run's log
// instead of passing silently. It exits 1 when a test or package failed or the input held no
// test events, else 0 (the Makefile also keeps go test's own exit status through pipefail).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is one skip reason and the tests it skipped.
type skip struct {
	reason string
	tests  []string
}

func main() {
	failed, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

// report copies the non-verbose view of the events in r to w and then the skip summary; it
// reports whether anything failed.
func report(r io.Reader, w io.Writer) (failed bool, err error) {
	out := map[string][]string{} // package + "\x00" + test → output lines so far
	var skips []*skip
	byReason := map[string]*skip{}
	events := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(w, string(line)) // not JSON (e.g. a go command error): pass it on
			continue
		}
		events++
		key := e.Package + "\x00" + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				fmt.Fprint(w, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			failed = true
		case e.Action == "output":
			out[key] = append(out[key], e.Output)
		case e.Action == "fail":
			failed = true
			for _, l := range out[key] {
				if !strings.HasPrefix(l, "=== ") {
					fmt.Fprint(w, l)
				}
			}
			delete(out, key)
		case e.Action == "skip" && e.Test == "":
			// a package without test files: go test prints its "?" line, passed on above
		case e.Action == "skip":
			reason := skipReason(out[key])
			s := byReason[reason]
			if s == nil {
				s = &skip{reason: reason}
				byReason[reason] = s
				skips = append(skips, s)
			}
			s.tests = append(s.tests, shortPkg(e.Package)+"."+e.Test)
			delete(out, key)
		case e.Action == "pass":
			delete(out, key)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	if events == 0 {
		return true, fmt.Errorf("no go test -json events on standard input")
	}
	n := 0
	for _, s := range skips {
		n += len(s.tests)
	}
	if n > 0 {
		fmt.Fprintf(w, "skipped: %d test(s), by reason:\n", n)
		sort.SliceStable(skips, func(i, j int) bool { return len(skips[i].tests) > len(skips[j].tests) })
		for _, s := range skips {
			tests := s.tests
			more := ""
			if len(tests) > 4 {
				tests, more = tests[:4], fmt.Sprintf(" and %d more", len(s.tests)-4)
			}
			fmt.Fprintf(w, "  %s — %s%s\n", s.reason, strings.Join(tests, ", "), more)
		}
	}
	return failed, nil
}

// skipReason is the message a test skipped with: the last line of its own output before
// "--- SKIP", without the file:line prefix testing adds.
func skipReason(lines []string) string {
	reason := "(no reason given)"
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		if i := strings.Index(t, ".go:"); i > 0 {
			if j := strings.Index(t[i:], ": "); j > 0 {
				t = t[i+j+2:]
			}
		}
		reason = t
	}
	return reason
}

// shortPkg drops the module path from a package path.
func shortPkg(p string) string {
	if s := strings.TrimPrefix(strings.TrimPrefix(p, "github.com/artnet/artnet"), "/"); s != "" {
		return s
	}
	return "artnet"
}
