package resolvers

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Global ids are base64url("Type:rowid"): opaque to clients, unique across
// types, and decodable by node(id:) without a lookup table.

func globalID(typeName string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(typeName + ":" + strconv.FormatInt(id, 10)))
}

// subjectGlobalID turns an event subject ("Type:rowid") into a global id.
func subjectGlobalID(subject *string) *string {
	if subject == nil {
		return nil
	}
	s := base64.RawURLEncoding.EncodeToString([]byte(*subject))
	return &s
}

// parseGlobalID returns the type name and row id of a global id; ok is false
// for anything that is not one of ours.
func parseGlobalID(id string) (typeName string, rowID int64, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return "", 0, false
	}
	typeName, num, found := strings.Cut(string(raw), ":")
	if !found || typeName == "" {
		return "", 0, false
	}
	rowID, err = strconv.ParseInt(num, 10, 64)
	if err != nil || rowID <= 0 {
		return "", 0, false
	}
	return typeName, rowID, true
}

// rowIDOf parses a global id that must be of the given type.
func rowIDOf(argument, typeName, id string) (int64, error) {
	t, rowID, ok := parseGlobalID(id)
	if !ok || t != typeName {
		return 0, badInput(argument, "not a %s id", typeName)
	}
	return rowID, nil
}
