package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func runSummary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "artnet", Commands: []*cli.Command{{Name: "model", Subcommands: []*cli.Command{summaryCommand()}}},
		Writer: &out, ErrWriter: &out, ExitErrHandler: func(*cli.Context, error) {}}
	err := app.RunContext(context.Background(), append([]string{"artnet", "model", "summary"}, args...))
	return out.String(), err
}

func TestSummaryCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--variant", "b0"}, []string{"backbone      4,007,548", "backbone.features.8", "1×1280×7×7", "1×49×512", "heads.style"}},
		{[]string{"--variant", "b4", "--image-size", "96"}, []string{"backbone     17,548,616", "1×1792×3×3", "input 1×3×96×96"}},
	} {
		out, err := runSummary(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		t.Log("\n" + out)
	}
	if _, err := runSummary(t, "--variant", "b9"); err == nil || !strings.Contains(err.Error(), `"b9"`) {
		t.Errorf("unknown variant: %v", err)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 17548616: "17,548,616", -4007548: "-4,007,548"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
