// Package notests has no tests: go test -json reports it as a skipped package.
package notests

// X is here so that the package is not empty.
const X = 1
