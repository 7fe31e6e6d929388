package crm_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func subscribe(e *env, method string, ch map[string]any) reply {
	e.t.Helper()
	return e.req(method, "actions/watch", map[string]any{"watch": []any{ch}})
}

func TestWatchLifecycle(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	expiry := e.clk.Now().Add(48 * time.Hour).In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339)
	r := subscribe(e, "POST", map[string]any{"channel_id": "1000000068001", "events": []string{"Contacts.all", "Accounts.create"},
		"channel_expiry": expiry, "token": "TOKEN_FOR_VERIFICATION_OF_1000000068001",
		"notify_url": rc.srv.URL + "/hooks/zoho-crm?tenant=42"}).want(t, 201, "")
	res := obj(r.body["watch"].([]any)[0])
	if res["code"] != "SUCCESS" || res["message"] != "Successfully subscribed for actions-watch of the given module" {
		t.Fatalf("subscribe %s", r.raw)
	}
	evs := obj(res["details"])["events"].([]any)
	if len(evs) != 2 {
		t.Fatalf("events %v", evs)
	}
	ev := obj(evs[0])
	sameKeys(t, "event", ev, "channel_expiry", "resource_uri", "resource_id", "resource_name", "channel_id")
	if ev["resource_name"] != "Contacts" || !strings.HasSuffix(str(ev["resource_uri"]), "/crm/v2/Contacts") ||
		ev["channel_id"] != "1000000068001" || !strings.HasSuffix(str(ev["channel_expiry"]), "-07:00") {
		t.Fatalf("event %v", ev)
	}
	got, _ := time.Parse(time.RFC3339, str(ev["channel_expiry"]))
	want, _ := time.Parse(time.RFC3339, expiry)
	if !got.Equal(want) {
		t.Fatalf("channel_expiry %v, want the instant %v", got, want)
	}

	// Subscribe errors.
	for _, tc := range []struct {
		ch      map[string]any
		code    string
		apiName string
	}{
		{map[string]any{"events": []string{"Contacts.all"}, "notify_url": rc.srv.URL}, "MANDATORY_NOT_FOUND", "channel_id"},
		{map[string]any{"channel_id": "2", "notify_url": rc.srv.URL}, "MANDATORY_NOT_FOUND", "events"},
		{map[string]any{"channel_id": "2", "events": []string{"Contacts.all"}}, "MANDATORY_NOT_FOUND", "notify_url"},
		{map[string]any{"channel_id": "2", "events": []string{"Contacts.all"}, "notify_url": rc.srv.URL, "token": strings.Repeat("t", 51)}, "INVALID_DATA", "token"},
		{map[string]any{"channel_id": "2", "events": []string{"Contacts.all"}, "notify_url": rc.srv.URL,
			"channel_expiry": e.clk.Now().Add(8 * 24 * time.Hour).Format(time.RFC3339)}, "INVALID_DATA", "channel_expiry"},
		{map[string]any{"channel_id": "2", "events": []string{"Widgets.all"}, "notify_url": rc.srv.URL}, "INVALID_DATA", "events"},
		{map[string]any{"channel_id": "2", "events": []string{"Contacts.explode"}, "notify_url": rc.srv.URL}, "INVALID_DATA", "events"},
		{map[string]any{"channel_id": "abc", "events": []string{"Contacts.all"}, "notify_url": rc.srv.URL}, "INVALID_DATA", "channel_id"},
		{map[string]any{"channel_id": "2", "events": []string{"Contacts.all"}, "notify_url": "ftp://x"}, "INVALID_DATA", "notify_url"},
	} {
		r := subscribe(e, "POST", tc.ch).want(t, 400, "")
		res := obj(r.body["watch"].([]any)[0])
		if res["code"] != tc.code || obj(res["details"])["api_name"] != tc.apiName || res["status"] != "error" {
			t.Errorf("subscribe %v: %s, want %s on %s", tc.ch, r.raw, tc.code, tc.apiName)
		}
	}
	if r := subscribe(e, "POST", map[string]any{"channel_id": "3", "events": []string{"Deals.edit"}, "notify_url": rc.srv.URL,
		"token": strings.Repeat("t", 50)}); r.status != 201 {
		t.Fatalf("a 50-character token is allowed: %s", r.raw)
	}

	// List, then PATCH adds an event and PUT replaces.
	r = e.req("GET", "actions/watch?channel_id=1000000068001", nil).want(t, 200, "")
	rows := r.body["watch"].([]any)
	if len(rows) != 2 || obj(rows[0])["token"] != "TOKEN_FOR_VERIFICATION_OF_1000000068001" {
		t.Fatalf("list %s", r.raw)
	}
	subscribe(e, "PATCH", map[string]any{"channel_id": "1000000068001", "events": []string{"Deals.delete"}}).want(t, 200, "")
	r = e.req("GET", "actions/watch?channel_id=1000000068001&module=Deals", nil).want(t, 200, "")
	if row := obj(r.body["watch"].([]any)[0]); str(row["events"]) != `["Deals.delete"]` || row["notify_url"] != rc.srv.URL+"/hooks/zoho-crm?tenant=42" {
		t.Fatalf("after PATCH %s", r.raw)
	}
	subscribe(e, "PATCH", map[string]any{"channel_id": "1000000068001", "events": []string{"Deals.delete"}, "_delete_events": true}).want(t, 200, "")
	subscribe(e, "PATCH", map[string]any{"channel_id": "999", "events": []string{"Deals.delete"}}).want(t, 400, "")
	subscribe(e, "PUT", map[string]any{"channel_id": "3", "events": []string{"Notes.create"}, "notify_url": rc.srv.URL}).want(t, 200, "")
	r = e.req("GET", "actions/watch?channel_id=3", nil).want(t, 200, "")
	if row := obj(r.body["watch"].([]any)[0]); row["resource_name"] != "Notes" || row["token"] != nil {
		t.Fatalf("after PUT %s", r.raw)
	}

	// Unsubscribe.
	r = e.req("DELETE", "actions/watch?channel_ids=3,404", nil).want(t, 207, "")
	if obj(r.body["watch"].([]any)[0])["code"] != "SUCCESS" || obj(r.body["watch"].([]any)[1])["code"] != "NOT_SUBSCRIBED" {
		t.Fatalf("unsubscribe %s", r.raw)
	}
	e.req("DELETE", "actions/watch", nil).want(t, 400, "REQUIRED_PARAM_MISSING")
	e.req("GET", "actions/watch?channel_id=3", nil).empty(t, 204)

	// Channels expire: after an hour a default channel is gone.
	subscribe(e, "POST", map[string]any{"channel_id": "4", "events": []string{"Leads.all"}, "notify_url": rc.srv.URL}).want(t, 201, "")
	e.advance(time.Hour)
	e.req("GET", "actions/watch?channel_id=4", nil).empty(t, 204)
	e.req("GET", "actions/watch?channel_id=1000000068001", nil).want(t, 200, "")
}

func TestWatchCallbacks(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	rc := newReceiver(t)
	subscribe(e, "POST", map[string]any{"channel_id": "1000000068001", "events": []string{"Contacts.all"},
		"token": "tok-1", "return_affected_field_values": true,
		"notify_url": rc.srv.URL + "/hooks/zoho-crm?tenant=42&conn=abc"}).want(t, 201, "")

	// An API bulk insert: one callback with every id.
	r := e.req("POST", "Contacts", map[string]any{"data": []any{contact("A", "a@cb.example"), contact("B", "b@cb.example"),
		map[string]any{"First_Name": "invalid"}}}).want(t, 207, "")
	a, b := str(obj(r.data()[0]["details"])["id"]), str(obj(r.data()[1]["details"])["id"])
	got := rc.waitFor(t, 1)
	cb := got[0]
	sameKeys(t, "callback", cb, "server_time", "query_params", "module", "resource_uri", "ids", "affected_fields",
		"operation", "channel_id", "token")
	if _, isNumber := cb["server_time"].(json.Number); !isNumber || str(cb["server_time"]) != str(e.clk.Now().UnixMilli()) {
		t.Fatalf("server_time %#v", cb["server_time"])
	}
	if str(cb["query_params"]) != `{"conn":"abc","tenant":"42"}` || cb["module"] != "Contacts" || cb["operation"] != "insert" ||
		cb["channel_id"] != "1000000068001" || cb["token"] != "tok-1" || str(cb["ids"]) != `["`+a+`","`+b+`"]` ||
		str(cb["affected_fields"]) != "[]" || cb["resource_uri"] != e.api.URL+"/crm/v2/Contacts" {
		t.Fatalf("insert callback %s", rc.raws[0])
	}

	// An update carries the changed fields.
	e.req("PUT", "Contacts", map[string]any{"data": []any{map[string]any{"id": a, "Mobile": "+1 555 1"},
		map[string]any{"id": b, "Title": "CTO", "Last_Name": "B"}}}).want(t, 200, "")
	cb = rc.waitFor(t, 2)[1]
	if cb["operation"] != "update" || str(cb["affected_fields"]) != `[{"`+a+`":["Mobile"]},{"`+b+`":["Title"]}]` {
		t.Fatalf("update callback %v", cb)
	}

	// The "UI" methods notify too: an edit, a mass update, a delete.
	if err := e.srv.Edit("Contacts", a, map[string]any{"Customer_Type": "SMB"}); err != nil {
		t.Fatal(err)
	}
	others := e.srv.IDs("Contacts")[:3]
	if err := e.srv.MassUpdate("Contacts", others, map[string]any{"Lead_Source": "Chat"}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Delete("Contacts", b); err != nil {
		t.Fatal(err)
	}
	got = rc.waitFor(t, 5)
	if got[2]["operation"] != "update" || str(got[2]["ids"]) != `["`+a+`"]` || str(got[2]["affected_fields"]) != `[{"`+a+`":["Customer_Type"]}]` {
		t.Fatalf("UI edit callback %v", got[2])
	}
	if len(got[3]["ids"].([]any)) != 3 {
		t.Fatalf("mass update callback %v", got[3])
	}
	if got[4]["operation"] != "delete" || str(got[4]["ids"]) != `["`+b+`"]` || str(got[4]["affected_fields"]) != "[]" {
		t.Fatalf("delete callback %v", got[4])
	}

	// Other modules are not sent to a Contacts channel.
	if _, err := e.srv.Create("Accounts", map[string]any{"Account_Name": "Quiet Ltd."}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if n := len(rc.all()); n != 5 {
		t.Fatalf("%d callbacks after an Accounts insert, want 5", n)
	}
}

func TestExpiredChannelStopsDelivering(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	rc := newReceiver(t)
	subscribe(e, "POST", map[string]any{"channel_id": "1", "events": []string{"Contacts.edit"}, "notify_url": rc.srv.URL + "?c=same"}).want(t, 201, "")
	subscribe(e, "POST", map[string]any{"channel_id": "2", "events": []string{"Contacts.edit"}, "notify_url": rc.srv.URL + "?c=same",
		"channel_expiry": e.clk.Now().Add(7 * 24 * time.Hour).Format(time.RFC3339)}).want(t, 201, "")
	id := e.srv.IDs("Contacts")[0]
	if err := e.srv.Edit("Contacts", id, map[string]any{"Title": "one"}); err != nil {
		t.Fatal(err)
	}
	if got := rc.waitFor(t, 2); got[0]["channel_id"] != "1" || got[1]["channel_id"] != "2" {
		t.Fatalf("before expiry %v", got)
	}
	e.clk.Advance(time.Hour)
	if err := e.srv.Edit("Contacts", id, map[string]any{"Title": "two"}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, 3)
	e.settle()
	got := rc.all()
	if len(got) != 3 || got[2]["channel_id"] != "2" {
		t.Fatalf("after channel 1 expired: %v", got)
	}
}
