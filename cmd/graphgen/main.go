// Command graphgen regenerates graph/ from schema/*.graphqls: gqlgen's code
// generation, then one rewrite of its output. `go generate ./...` runs it
// (the directive is in resolvers/resolver.go); graph/ is never edited by hand.
//
// The rewrite: gqlgen marshals every element of an object list in a goroutine
// of its own, so that resolvers of sibling elements (dataloaders above all)
// run together. For a list whose elements reach no resolver at all, such as a
// connection's edges of plain records, that buys nothing and costs a goroutine
// per element with its stack growth: about 15% of a sidebar request's CPU.
// graphgen makes exactly those lists marshal their elements in order. A list
// keeps gqlgen's concurrent marshaling as soon as anything its elements can
// reach dispatches a field concurrently, so batching is never lost.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "graphgen:", err)
		os.Exit(1)
	}
}

func run() error {
	// Loading the configuration moves into its directory, as gqlgen does.
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		return fmt.Errorf("loading gqlgen.yml: %w", err)
	}
	if err := api.Generate(cfg); err != nil {
		return fmt.Errorf("generating with gqlgen: %w", err)
	}
	execFile := cfg.Exec.Filename
	src, err := os.ReadFile(execFile)
	if err != nil {
		return fmt.Errorf("reading gqlgen's output: %w", err)
	}
	out, lists, err := marshalPlainListsInOrder(src)
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", execFile, err)
	}
	if lists == 0 {
		return errors.New("no list marshals its elements in order: gqlgen's output changed shape; update cmd/graphgen")
	}
	if err := os.WriteFile(execFile, out, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", execFile, err)
	}
	helper := filepath.Join(filepath.Dir(execFile), helperFile)
	if err := os.WriteFile(helper, []byte(helperSource(cfg.Exec.Package)), fs.FileMode(0o644)); err != nil {
		return fmt.Errorf("writing %s: %w", helper, err)
	}
	return nil
}
