// An empty stand-in for github.com/asim/go-bson, named by a replace in
// ../go.mod. go-plugins v1.5.1 is one module for all its plugins and
// requires go-bson (for its codec/bsonrpc) at a version whose go.mod the
// module proxy refuses (403), and Go needs the go.mod of every module in
// the graph, even of one no package built here imports. Nothing here
// imports go-bson, so this module has no package: a program that did would
// not build.
module github.com/asim/go-bson

go 1.12
