package zoho

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// cursorVersion is bumped whenever cursorState changes incompatibly; an
// older cursor is refused with a Permanent error rather than misread.
const cursorVersion = 1

// cursorPrefix marks our cursors, so a cursor of another system is refused
// at once.
const cursorPrefix = "zc1."

// cursorState is a position in a module's change stream, ordered by
// modified time. It is exact even when many records share one modified
// time: T is the newest modified time delivered and IDs the records
// delivered at exactly T, so a resumed walk skips those and nothing else.
// A walk in progress (a CRM page token, a Desk offset within one anchor)
// rides along as an optimisation; losing it (an expired token) costs a
// re-read, never a gap, because delivery is decided by (T, IDs) alone.
//
// Encoded as "zc1." + base64url(JSON):
//
//	{"v":1,"m":"Contacts","t":"2026-01-02T03:04:05Z","ids":["…"],"a":"…","pt":"…","off":0,"cv":"…"}
type cursorState struct {
	V      int      `json:"v"`
	Module string   `json:"m"`
	T      string   `json:"t,omitempty"`   // RFC 3339 (nanoseconds); "" = from the beginning
	IDs    []string `json:"ids,omitempty"` // delivered ids whose modified time is T
	Anchor string   `json:"a,omitempty"`   // the walk's lower bound, when one is in progress
	Token  string   `json:"pt,omitempty"`  // CRM: next_page_token of that walk
	Offset int      `json:"off,omitempty"` // Desk: records of that walk already read
	View   string   `json:"cv,omitempty"`  // CRM custom view the stream is filtered by

	seen map[string]bool // IDs as a set, built on first use
}

func (c cursorState) encode() connector.Cursor {
	c.V = cursorVersion
	b, _ := json.Marshal(c)
	return connector.Cursor(cursorPrefix + base64.RawURLEncoding.EncodeToString(b))
}

func decodeCursor(cur connector.Cursor, m connector.Module) (cursorState, error) {
	if cur == "" {
		return cursorState{V: cursorVersion, Module: string(m)}, nil
	}
	bad := func(why string) error {
		return &connector.Error{Class: connector.Permanent, Reason: connector.ReasonParamInvalid, Code: "INVALID_CURSOR",
			Message: fmt.Sprintf("reading cursor of %s: %s", m, why)}
	}
	rest, ok := strings.CutPrefix(string(cur), cursorPrefix)
	if !ok {
		return cursorState{}, bad("not a Zoho connector cursor of this version")
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return cursorState{}, bad("not base64")
	}
	var c cursorState
	if err := json.Unmarshal(raw, &c); err != nil {
		return cursorState{}, bad("not JSON")
	}
	if c.V != cursorVersion {
		return cursorState{}, bad(fmt.Sprintf("version %d, want %d", c.V, cursorVersion))
	}
	if c.Module != string(m) {
		return cursorState{}, bad(fmt.Sprintf("made for module %q", c.Module))
	}
	if c.T != "" {
		if _, err := time.Parse(time.RFC3339Nano, c.T); err != nil {
			return cursorState{}, bad("bad time")
		}
	}
	return c, nil
}

func startCursor(m connector.Module, t time.Time) connector.Cursor {
	c := cursorState{Module: string(m)}
	if !t.IsZero() {
		// Deliver records modified at or after t: the position just before.
		c.T = t.Add(-time.Nanosecond).UTC().Format(time.RFC3339Nano)
	}
	return c.encode()
}

func (c cursorState) time() (time.Time, bool) {
	if c.T == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, c.T)
	return t, err == nil
}

// delivered reports whether a record modified at mt was delivered already.
func (c *cursorState) delivered(mt time.Time, id string) bool {
	t, ok := c.time()
	if !ok {
		return false
	}
	switch mt.Compare(t) {
	case -1:
		return true
	case 0:
		if c.seen == nil {
			c.seen = make(map[string]bool, len(c.IDs))
			for _, x := range c.IDs {
				c.seen[x] = true
			}
		}
		return c.seen[id]
	}
	return false
}

// advance records the delivery of a record modified at mt.
func (c *cursorState) advance(mt time.Time, id string) {
	t, ok := c.time()
	if !ok || mt.After(t) {
		c.T = mt.UTC().Format(time.RFC3339Nano)
		c.IDs = []string{id}
		c.seen = map[string]bool{id: true}
		return
	}
	if mt.Equal(t) && !c.delivered(mt, id) {
		c.IDs = append(c.IDs, id)
		c.seen[id] = true
	}
}

// resetWalk forgets the walk in progress; the next call starts a fresh one
// anchored at T.
func (c *cursorState) resetWalk() {
	c.Anchor, c.Token, c.Offset = "", "", 0
}
