package crm_test

import (
	"strings"
	"testing"
	"time"
)

func TestBiginFlavor(t *testing.T) {
	e := newEnv(t, withWorld(60, 8, 4), bigin())
	e.req("GET", "Leads?fields=Last_Name", nil).want(t, 400, "INVALID_MODULE")
	e.req("GET", "Deals?fields=Deal_Name", nil).want(t, 400, "INVALID_MODULE")
	e.req("GET", "/crm/v8/Contacts?fields=Email", nil).want(t, 404, "INVALID_URL_PATTERN")

	r := e.req("GET", "Pipelines?fields=Deal_Name,Stage,Sub_Pipeline,Pipeline,Closing_Date,Amount,Contact_Name,Account_Name&per_page=10", nil).want(t, 200, "")
	for _, p := range r.data() {
		if !strings.HasPrefix(str(p["id"]), "2034020") || !idRE.MatchString(str(p["id"])) {
			t.Fatalf("Bigin id %v", p["id"])
		}
		if p["Sub_Pipeline"] == nil || p["Stage"] == nil || p["Contact_Name"] == nil {
			t.Fatalf("pipeline record %v", p)
		}
	}
	full, _ := e.srv.Record("Pipelines", str(r.data()[0]["id"]))
	if ct := str(full["Created_Time"]); !strings.HasSuffix(ct, "+09:00") {
		t.Fatalf("Bigin times use the org offset: %s", ct)
	}

	mods := e.req("GET", "settings/modules", nil).want(t, 200, "")
	for _, m := range mods.body["modules"].([]any) {
		if obj(m)["api_name"] == "Accounts" && obj(m)["plural_label"] != "Companies" {
			t.Fatalf("Accounts should be labelled Companies: %v", m)
		}
	}

	contactID, _ := e.find("Contacts", func(m map[string]any) bool { return true })
	r = e.req("POST", "Pipelines", map[string]any{"data": []any{
		map[string]any{"Deal_Name": "Renewal", "Sub_Pipeline": "Sales Pipeline Standard", "Stage": "Qualification",
			"Contact_Name": map[string]any{"id": contactID}, "Closing_Date": "2025-03-31", "Amount": 1200},
		map[string]any{"Deal_Name": "Wrong stage", "Sub_Pipeline": "Renewals", "Stage": "Qualification"},
		map[string]any{"Deal_Name": "No sub-pipeline", "Stage": "Qualification"},
	}}).want(t, 207, "")
	d := r.data()
	if d[0]["code"] != "SUCCESS" || d[1]["code"] != "INVALID_DATA" || obj(d[1]["details"])["api_name"] != "Stage" ||
		d[2]["code"] != "MANDATORY_NOT_FOUND" || obj(d[2]["details"])["api_name"] != "Sub_Pipeline" {
		t.Fatalf("pipelines insert %s", r.raw)
	}
	pid := str(obj(d[0]["details"])["id"])
	found := false
	for _, p := range e.req("GET", "Contacts/"+contactID+"/Pipelines?fields=Deal_Name", nil).want(t, 200, "").data() {
		found = found || str(p["id"]) == pid
	}
	if !found {
		t.Fatal("the new pipeline is not in the contact's Pipelines")
	}

	// Watch works under /bigin/v2 with Bigin resource URIs.
	rc := newReceiver(t)
	subscribe(e, "POST", map[string]any{"channel_id": "77", "events": []string{"Pipelines.edit"}, "notify_url": rc.srv.URL}).want(t, 201, "")
	e.req("PUT", "Pipelines/"+pid, map[string]any{"data": []any{map[string]any{"Stage": "Closed Won"}}}).want(t, 200, "")
	cb := rc.waitFor(t, 1)[0]
	if cb["resource_uri"] != e.api.URL+"/bigin/v2/Pipelines" || cb["operation"] != "update" {
		t.Fatalf("Bigin callback %v", cb)
	}
	e.clk.Advance(time.Second)
}
