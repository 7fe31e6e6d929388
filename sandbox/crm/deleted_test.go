package crm_test

import (
	"testing"
	"time"
)

func TestDeletedFeed(t *testing.T) {
	e := newEnv(t, withWorld(40, 6, 3))
	ids := e.srv.IDs("Contacts")
	byAPI, byUI := ids[0], ids[1]
	rec, _ := e.srv.Record("Contacts", byAPI)
	e.req("DELETE", "Contacts/"+byAPI, nil).want(t, 200, "")
	e.clk.Advance(time.Minute)
	if err := e.srv.Delete("Contacts", byUI); err != nil {
		t.Fatal(err)
	}
	r := e.req("GET", "Contacts/deleted?type=all", nil).want(t, 200, "")
	sameKeys(t, "deleted info", r.info(), "per_page", "count", "page", "more_records")
	d := r.data()
	if len(d) != 2 || d[0]["id"] != byUI || d[1]["id"] != byAPI {
		t.Fatalf("deleted feed %s", r.raw)
	}
	for _, x := range d {
		sameKeys(t, "deleted entry", x, "id", "display_name", "type", "deleted_time", "deleted_by", "created_by")
		if x["type"] != "recycle" || !timeRE.MatchString(str(x["deleted_time"])) {
			t.Fatalf("entry %v", x)
		}
	}
	if d[1]["display_name"] != rec["Full_Name"] || obj(d[1]["deleted_by"])["name"] == nil {
		t.Fatalf("entry %v, want display name %v", d[1], rec["Full_Name"])
	}
	if obj(d[0]["deleted_by"])["name"] != "Patricia Boyle" {
		t.Fatalf("a UI delete is made by the org's admin: %v", d[0]["deleted_by"])
	}
	e.req("GET", "Contacts/deleted?type=permanent", nil).empty(t, 204)
	e.req("GET", "Contacts/deleted?type=bogus", nil).want(t, 400, "INVALID_DATA")

	// If-Modified-Since: only deletions after the instant; 304 when none.
	mid := e.clk.Now().Add(-30 * time.Second).Format(time.RFC3339)
	if r := e.req("GET", "Contacts/deleted", nil, "If-Modified-Since", mid); len(r.data()) != 1 || r.data()[0]["id"] != byUI {
		t.Fatalf("deleted since %s: %s", mid, r.raw)
	}
	e.req("GET", "Contacts/deleted", nil, "If-Modified-Since", e.clk.Now().Format(time.RFC3339)).empty(t, 304)

	// Emptying the recycle bin makes the entries permanent, without names.
	e.srv.EmptyRecycleBin("Contacts")
	r = e.req("GET", "Contacts/deleted?type=permanent", nil).want(t, 200, "")
	for _, x := range r.data() {
		if x["display_name"] != nil || x["deleted_by"] != nil || x["created_by"] != nil {
			t.Fatalf("permanent entry %v", x)
		}
	}
	e.req("GET", "Contacts/deleted?type=recycle", nil).empty(t, 204)

	// A fresh deletion purges itself after 60 days; permanent entries are
	// listed 120 days.
	e.req("DELETE", "Contacts/"+ids[2], nil).want(t, 200, "")
	e.advance(59 * 24 * time.Hour)
	if r := e.req("GET", "Contacts/deleted?type=recycle", nil); len(r.data()) != 1 {
		t.Fatalf("day 59: %s", r.raw)
	}
	e.advance(2 * 24 * time.Hour)
	e.req("GET", "Contacts/deleted?type=recycle", nil).empty(t, 204)
	if r := e.req("GET", "Contacts/deleted?type=permanent", nil); len(r.data()) != 3 {
		t.Fatalf("day 61: %s", r.raw)
	}
	e.advance(60 * 24 * time.Hour)
	if r := e.req("GET", "Contacts/deleted", nil); len(r.data()) != 1 || r.data()[0]["id"] != ids[2] {
		t.Fatalf("day 121: %s", r.raw)
	}
	e.advance(60 * 24 * time.Hour)
	e.req("GET", "Contacts/deleted", nil).empty(t, 204)
}
