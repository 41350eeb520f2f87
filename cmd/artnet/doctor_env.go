package main

import (
	"fmt"
	"io"

	"github.com/artnet/artnet/internal/envvar"
)

// doctorEnv lists every environment variable artnet reads (internal/envvar's registry) with
// its value here, or its default when unset.
func doctorEnv(w io.Writer) {
	fmt.Fprintln(w, "Environment variables artnet reads:")
	for _, v := range envvar.All() {
		val := v.Get()
		switch {
		case val != "":
			val = fmt.Sprintf("%q", val)
		case v.Default != "":
			val = "unset (default " + v.Default + ")"
		default:
			val = "unset"
		}
		what := v.Doc
		if v.Tests {
			what = "tests: " + what
		}
		fmt.Fprintf(w, "  %-32s %s — %s\n", v.Name, val, what)
	}
}
