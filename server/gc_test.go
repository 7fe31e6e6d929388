package server

import (
	"runtime/debug"
	"testing"
)

// serve and sandbox raise the collector's target unless GOGC is set, in
// which case the runtime already follows it and deskbridge leaves it be.
func TestDefaultGCPercentYieldsToGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	setDefaultGCPercent(IO{Getenv: func(string) string { return "" }})
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("without GOGC the target is %d, want %d", got, defaultGCPercent)
	}
	setDefaultGCPercent(IO{Getenv: func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set the target moved to %d", got)
	}
}
