package resolvers

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
)

// Cursors are base64url("c:<key>") where key is the row id the list is
// ordered by: stable while rows are added, so BI tools can page a growing
// list without skipping or repeating.

func encodeCursor(key int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c:" + strconv.FormatInt(key, 10)))
}

func decodeCursor(argument string, cursor *string) (int64, error) {
	if cursor == nil || *cursor == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*cursor)
	if err == nil {
		if num, ok := strings.CutPrefix(string(raw), "c:"); ok {
			if key, err := strconv.ParseInt(num, 10, 64); err == nil && key >= 0 {
				return key, nil
			}
		}
	}
	return 0, badInput(argument, "not a cursor from this list")
}

// pageSize checks a `first` argument against its bounds; the schema gives
// the default.
func pageSize(first *int, def, max int) (int, error) {
	if first == nil {
		return def, nil
	}
	if *first < 1 || *first > max {
		return 0, badInput("first", "must be between 1 and %d", max)
	}
	return *first, nil
}

// trimPage cuts a result fetched with limit+1 rows down to limit and reports
// whether the extra row, and so a next page, existed.
func trimPage[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit], true
	}
	return rows, false
}

// pageInfo describes a page fetched with limit+1 rows (more tells whether the
// extra row existed).
func pageInfo(firstKey, lastKey int64, n int, more, hasPrevious bool) *model.PageInfo {
	info := &model.PageInfo{HasNextPage: more, HasPreviousPage: hasPrevious}
	if n > 0 {
		start, end := encodeCursor(firstKey), encodeCursor(lastKey)
		info.StartCursor, info.EndCursor = &start, &end
	}
	return info
}

// idEdges turns a page of rows fetched with limit+1 into edges whose
// cursors are the rows' ids as plain numbers (event and signal ids), and
// the page's info.
func idEdges[T, E any](rows []T, limit int, hasPrevious bool, id func(T) int64, edge func(cursor string, row T) E) ([]E, *model.PageInfo) {
	rows, more := trimPage(rows, limit)
	edges := make([]E, len(rows))
	info := &model.PageInfo{HasNextPage: more, HasPreviousPage: hasPrevious}
	for i, row := range rows {
		edges[i] = edge(strconv.FormatInt(id(row), 10), row)
	}
	if len(rows) > 0 {
		start, end := strconv.FormatInt(id(rows[0]), 10), strconv.FormatInt(id(rows[len(rows)-1]), 10)
		info.StartCursor, info.EndCursor = &start, &end
	}
	return edges, info
}

// eventPosition parses an event id used as a resume point. Event cursors are
// the ids themselves, so either is accepted.
func eventPosition(argument string, s *string) (int64, error) {
	if s == nil || *s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(*s, 10, 64)
	if err != nil || id < 0 {
		return 0, badInput(argument, "not an event id")
	}
	return id, nil
}

// subscriber opens a subscription: its viewer, and where its stream starts,
// after the event id given or, without one, with what happens from now on
// (-1).
func subscriber(ctx context.Context, after *string) (auth.Viewer, int64, error) {
	v, err := auth.FromContext(ctx)
	if err != nil {
		return auth.Viewer{}, 0, err
	}
	if after == nil {
		return v, -1, nil
	}
	from, err := eventPosition("after", after)
	return v, from, err
}
