package server

import (
	"testing"

	"github.com/deskbridge/deskbridge/store/storetest"
)

// TestMain stops this package's throwaway PostgreSQL when its tests end.
func TestMain(m *testing.M) { storetest.Main(m) }
