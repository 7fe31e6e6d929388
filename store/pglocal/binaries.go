package pglocal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrBinariesNotFound means no directory with both initdb and postgres was
// found. Its message is a single line telling the user what to do, because
// it is usually the first thing a new developer sees.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries (initdb, postgres) not found: " +
	"install them (apt-get install postgresql, or brew install postgresql), " +
	"set DESKBRIDGE_PG_BIN to their directory, or set DATABASE_URL to use an existing server")

// searchPatterns are the conventional install locations, in order of
// preference, searched after the hint and PATH. Within one pattern the highest
// version wins, because a newer server can always be used for a new cluster.
// A variable so tests can point the search at an empty directory.
var searchPatterns = []string{
	"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
	"/usr/local/pgsql/bin",              // built from source
	"/opt/homebrew/opt/postgresql*/bin", // Homebrew on Apple silicon
	"/usr/local/opt/postgresql*/bin",    // Homebrew on Intel
}

// FindBinaries returns the directory holding initdb and postgres.
//
// A non-empty hint (the DESKBRIDGE_PG_BIN setting) is the only place looked
// at: if the user named a directory, silently using some other installation
// would be surprising, so a wrong hint is an error. Otherwise it tries the
// directory of initdb on PATH (with symlinks resolved, because Debian's
// /usr/bin links do not sit next to postgres), then searchPatterns. Every
// failure wraps ErrBinariesNotFound.
func FindBinaries(hint string) (string, error) {
	if hint != "" {
		if hasBinaries(hint) {
			return hint, nil
		}
		return "", fmt.Errorf("%s has no initdb and postgres: %w", hint, ErrBinariesNotFound)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasBinaries(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasBinaries(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	for _, pattern := range searchPatterns {
		dirs, _ := filepath.Glob(pattern) // the patterns are constant and valid
		slices.SortStableFunc(dirs, func(a, b string) int { return compareVersions(b, a) })
		for _, d := range dirs {
			if hasBinaries(d) {
				return d, nil
			}
		}
	}
	return "", ErrBinariesNotFound
}

// hasBinaries reports whether dir has executable initdb and postgres files.
func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

var numberPattern = regexp.MustCompile(`\d+`)

// compareVersions orders install paths by the numbers in them, so
// /usr/lib/postgresql/15/bin sorts above .../9.6/bin, and postgresql@17 above
// postgresql@16. Paths whose numbers tie compare as strings, for determinism.
func compareVersions(a, b string) int {
	if c := slices.Compare(versionNumbers(a), versionNumbers(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func versionNumbers(s string) []int {
	var out []int
	for _, n := range numberPattern.FindAllString(s, -1) {
		v, _ := strconv.Atoi(n) // only digits; an absurdly long run just becomes 0
		out = append(out, v)
	}
	return out
}
