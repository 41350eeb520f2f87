// Package errtext formats error messages for artnet's one-line reports. It has its own folder
// because the CLI, the server, prediction, evaluation and weight import all print errors the
// same way and must not depend on each other for it.
package errtext

import "strings"

// OneLine folds a possibly multi-line message (errors.Join puts one error per line) into one
// line: line breaks become "; " and runs of white space one space.
func OneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
