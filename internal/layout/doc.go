// Package layout holds the tests of the repository's shape: its layering
// (README.md, "How it is built": a package may import the ones below it,
// never the reverse; the rules are the table in layout_test.go) and the
// naming of functional options (WithX everywhere). It has no code of its
// own.
package layout
