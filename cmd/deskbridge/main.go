// Command deskbridge is the gateway binary: serve, migrate, token and
// version. Everything is wired in package server.
package main

import (
	"os"

	"github.com/deskbridge/deskbridge/server"
)

func main() {
	os.Exit(server.Main(os.Args[1:], server.IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}))
}
