package resolvers

import (
	"strings"
	"unicode/utf8"
)

// boundedText trims s and checks it is 1 to max characters.
func boundedText(argument, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", badInput(argument, "must not be empty")
	}
	if utf8.RuneCountInString(s) > max {
		return "", badInput(argument, "must be at most %d characters", max)
	}
	return s, nil
}
