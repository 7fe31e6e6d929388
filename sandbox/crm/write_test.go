package crm_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox/crm"
)

func contact(last, email string, extra ...any) map[string]any {
	m := map[string]any{"Last_Name": last}
	if email != "" {
		m["Email"] = email
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func TestInsertUpdateDeleteRoundTrip(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	acc, err := e.srv.Create("Accounts", map[string]any{"Account_Name": "Roundtrip GmbH", "Industry": "Software"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.req("POST", "Contacts", map[string]any{"trigger": []string{"workflow"}, "data": []any{
		contact("Tanaka", "hanako@roundtrip.example", "First_Name", "花子", "Account_Name", map[string]any{"id": acc},
			"Customer_Type", "Enterprise", "Loyalty_Points__c", 1200, "Renewal_Date__c", "2027-03-31",
			"Email_Opt_Out", true, "Secondary_Email", "h@home.example"),
		contact("Moreau", "", "Loyalty_Points__c", "42"),
	}}).want(t, 201, "")
	sameKeys(t, "write", r.body, "data")
	ids := []string{}
	for _, res := range r.data() {
		sameKeys(t, "result", res, "code", "details", "message", "status")
		if res["code"] != "SUCCESS" || res["message"] != "record added" || res["status"] != "success" {
			t.Fatalf("result %v", res)
		}
		d := obj(res["details"])
		sameKeys(t, "details", d, "Modified_Time", "Modified_By", "Created_Time", "id", "Created_By")
		sameKeys(t, "Created_By", obj(d["Created_By"]), "name", "id")
		if !timeRE.MatchString(str(d["Created_Time"])) || !idRE.MatchString(str(d["id"])) {
			t.Fatalf("details %v", d)
		}
		ids = append(ids, str(d["id"]))
	}
	got := e.req("GET", "Contacts/"+ids[0], nil).want(t, 200, "").data()[0]
	for k, want := range map[string]string{"Last_Name": "Tanaka", "First_Name": "花子", "Full_Name": "花子 Tanaka",
		"Email": "hanako@roundtrip.example", "Customer_Type": "Enterprise", "Loyalty_Points__c": "1200",
		"Renewal_Date__c": "2027-03-31", "Email_Opt_Out": "true", "Secondary_Email": "h@home.example"} {
		if str(got[k]) != want {
			t.Errorf("%s = %v, want %s", k, got[k], want)
		}
	}
	if a := obj(got["Account_Name"]); a["name"] != "Roundtrip GmbH" || a["id"] != acc {
		t.Errorf("Account_Name %v", got["Account_Name"])
	}
	if owner := obj(got["Owner"]); owner["email"] != e.email {
		t.Errorf("Owner %v, want the token's user", owner)
	}
	if got["Phone"] != nil || got["Description"] != nil {
		t.Errorf("empty fields should be null: %v %v", got["Phone"], got["Description"])
	}

	// Bulk update, then single update by path.
	e.clk.Advance(65)
	r = e.req("PUT", "Contacts", map[string]any{"data": []any{
		map[string]any{"id": ids[0], "Phone": "+81 3 1234 5678"},
		map[string]any{"id": ids[1], "Title": "CFO", "Account_Name": nil},
	}}).want(t, 200, "")
	for _, res := range r.data() {
		if res["message"] != "record updated" {
			t.Fatalf("update result %v", res)
		}
	}
	e.req("PUT", "Contacts/"+ids[1], map[string]any{"data": []any{map[string]any{"Title": "CEO"}}}).want(t, 200, "")
	if rec, _ := e.srv.Record("Contacts", ids[1]); rec["Title"] != "CEO" || rec["Last_Name"] != "Moreau" {
		t.Fatalf("after PUT by id: %v", rec)
	}
	e.req("PUT", "Contacts/"+ids[1], map[string]any{"data": []any{map[string]any{"Last_Name": nil}}}).
		want(t, 400, "")

	// Delete: 200, then the id is gone.
	r = e.req("DELETE", "Contacts?ids="+ids[0]+","+ids[1], nil).want(t, 200, "")
	for i, res := range r.data() {
		want := map[string]any{"code": "SUCCESS", "message": "record deleted", "status": "success"}
		for k, v := range want {
			if res[k] != v {
				t.Fatalf("delete result %v", res)
			}
		}
		if str(obj(res["details"])["id"]) != ids[i] {
			t.Fatalf("delete details %v", res["details"])
		}
	}
	e.req("GET", "Contacts/"+ids[0], nil).want(t, 400, "INVALID_DATA")
	r = e.req("DELETE", "Contacts/"+ids[0], nil).want(t, 400, "")
	if r.data()[0]["code"] != "INVALID_DATA" {
		t.Fatalf("second delete %s", r.raw)
	}
}

func TestPerRecordErrorsAndMixedStatus(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	existingID, existing := e.find("Contacts", func(m map[string]any) bool { return m["Email"] != nil })
	dupEmail := strings.ToUpper(str(existing["Email"]))
	long := strings.Repeat("x", 81)
	r := e.req("POST", "Contacts", map[string]any{"data": []any{
		contact("Valid", "valid@example.com"),
		map[string]any{"First_Name": "NoLast"},
		contact("Typed", "", "Loyalty_Points__c", "lots"),
		contact(long, ""),
		contact("Dup", dupEmail),
		contact("Unknown", "", "Favourite_Colour", "blue"),
		contact("Pick", "", "Customer_Type", "Platinum"),
		contact("Bad", "not-an-email", "Loyalty_Points__c", 1.5),
		"not an object",
		contact("Digits", "", "Loyalty_Points__c", 1234567890),
		contact("Lookup", "", "Account_Name", map[string]any{"id": "5725767000000000001"}),
		contact("Bool", "", "Email_Opt_Out", "yes"),
		contact("Date", "", "Renewal_Date__c", "31/12/2026"),
	}}).want(t, 207, "")
	d := r.data()
	if len(d) != 13 {
		t.Fatalf("%d results for 13 records", len(d))
	}
	check := func(i int, code string, details map[string]any) {
		t.Helper()
		if d[i]["code"] != code || d[i]["status"] != "error" {
			t.Fatalf("record %d: %v, want %s", i, d[i], code)
		}
		got := obj(d[i]["details"])
		for k, v := range details {
			if str(got[k]) != str(v) {
				t.Fatalf("record %d details %v, want %s=%v", i, got, k, v)
			}
		}
	}
	if d[0]["code"] != "SUCCESS" {
		t.Fatalf("record 0: %v", d[0])
	}
	check(1, "MANDATORY_NOT_FOUND", map[string]any{"api_name": "Last_Name", "json_path": "$.data[1].Last_Name"})
	if d[1]["message"] != "required field not found" {
		t.Fatalf("message %v", d[1]["message"])
	}
	check(2, "INVALID_DATA", map[string]any{"api_name": "Loyalty_Points__c", "expected_data_type": "integer", "json_path": "$.data[2].Loyalty_Points__c"})
	check(3, "INVALID_DATA", map[string]any{"api_name": "Last_Name", "maximum_length": 80})
	check(4, "DUPLICATE_DATA", map[string]any{"api_name": "Email", "json_path": "$.data[4].Email", "more_records": false})
	dup := obj(obj(d[4]["details"])["duplicate_record"])
	if dup["id"] != existingID || obj(dup["module"])["api_name"] != "Contacts" {
		t.Fatalf("duplicate_record %v", dup)
	}
	sameKeys(t, "duplicate Owner", obj(dup["Owner"]), "name", "id", "zuid")
	check(5, "INVALID_DATA", map[string]any{"api_name": "Favourite_Colour"})
	check(6, "INVALID_DATA", map[string]any{"api_name": "Customer_Type", "expected_data_type": "picklist"})
	check(7, "MULTIPLE_OR_MULTI_ERRORS", nil)
	errs := obj(d[7]["details"])["errors"].([]any)
	if len(errs) != 2 || obj(errs[0])["code"] != "INVALID_DATA" || obj(errs[1])["code"] != "INVALID_DATA" {
		t.Fatalf("multiple errors %v", errs)
	}
	check(8, "INVALID_DATA", map[string]any{"expected_data_type": "jsonobject"})
	check(9, "INVALID_DATA", map[string]any{"api_name": "Loyalty_Points__c", "maximum_length": 9})
	check(10, "INVALID_DATA", map[string]any{"api_name": "Account_Name"})
	check(11, "INVALID_DATA", map[string]any{"api_name": "Email_Opt_Out", "expected_data_type": "boolean"})
	check(12, "INVALID_DATA", map[string]any{"api_name": "Renewal_Date__c", "expected_data_type": "date"})

	// All failing: 400 with the data array still there.
	r = e.req("POST", "Contacts", map[string]any{"data": []any{map[string]any{"First_Name": "x"}}}).want(t, 400, "")
	if r.data()[0]["code"] != "MANDATORY_NOT_FOUND" {
		t.Fatalf("all-fail body %s", r.raw)
	}

	// Update: unknown id and missing id.
	r = e.req("PUT", "Contacts", map[string]any{"data": []any{
		map[string]any{"id": existingID, "Title": "Buyer"},
		map[string]any{"id": "5725767000000000001", "Title": "x"},
		map[string]any{"Title": "no id"},
		map[string]any{"id": existingID, "Email": "valid@example.com"},
	}}).want(t, 207, "")
	d = r.data()
	if d[0]["code"] != "SUCCESS" {
		t.Fatalf("update 0 %v", d[0])
	}
	check(1, "INVALID_DATA", map[string]any{"api_name": "id", "json_path": "$.data[1].id"})
	if d[1]["message"] != "the id given seems to be invalid" {
		t.Fatalf("message %v", d[1]["message"])
	}
	check(2, "MANDATORY_NOT_FOUND", map[string]any{"api_name": "id"})
	check(3, "DUPLICATE_DATA", map[string]any{"api_name": "Email"})

	// Batch limits.
	var batch []any
	for i := range 101 {
		batch = append(batch, contact("L"+strconv.Itoa(i), ""))
	}
	r = e.req("POST", "Contacts", map[string]any{"data": batch}).want(t, 400, "LIMIT_EXCEEDED")
	if str(errDetails(r.body)["limit"]) != "100" {
		t.Fatalf("details %v", r.body["details"])
	}
	var ids []string
	for i := range 101 {
		ids = append(ids, "57257670000000"+strconv.Itoa(10000+i))
	}
	e.req("DELETE", "Contacts?ids="+strings.Join(ids, ","), nil).want(t, 400, "LIMIT_EXCEEDED")
	e.req("DELETE", "Contacts", nil).want(t, 400, "REQUIRED_PARAM_MISSING")
	r = e.req("DELETE", "Contacts?ids="+existingID+",5725767000000000001", nil).want(t, 207, "")
	if r.data()[0]["code"] != "SUCCESS" || r.data()[1]["code"] != "INVALID_DATA" {
		t.Fatalf("mixed delete %s", r.raw)
	}
}

func TestUniqueFieldsOnInsertAndUpdate(t *testing.T) {
	e := newEnv(t)
	e.req("POST", "Accounts", map[string]any{"data": []any{
		map[string]any{"Account_Name": "Zylker Inc."},
		map[string]any{"Account_Name": "zylker inc."},
		map[string]any{"Account_Name": "Other Ltd."},
	}}).want(t, 207, "")
	if n := e.srv.Count("Accounts"); n != 2 {
		t.Fatalf("%d accounts, want 2", n)
	}
	other, _ := e.find("Accounts", func(m map[string]any) bool { return m["Account_Name"] == "Other Ltd." })
	r := e.req("PUT", "Accounts/"+other, map[string]any{"data": []any{map[string]any{"Account_Name": "ZYLKER INC."}}}).want(t, 400, "")
	if r.data()[0]["code"] != "DUPLICATE_DATA" {
		t.Fatalf("rename onto an existing name: %s", r.raw)
	}
	// Renaming a record to its own name in another case is fine.
	zylker, _ := e.find("Accounts", func(m map[string]any) bool { return m["Account_Name"] == "Zylker Inc." })
	e.req("PUT", "Accounts/"+zylker, map[string]any{"data": []any{map[string]any{"Account_Name": "ZYLKER Inc."}}}).want(t, 200, "")

	// The UI methods share validation; their errors carry the Zoho code.
	_, err := e.srv.Create("Accounts", map[string]any{"Account_Name": "other ltd."})
	var ze *crm.Error
	if !errors.As(err, &ze) || ze.Code != "DUPLICATE_DATA" {
		t.Fatalf("UI create of a duplicate: %v", err)
	}
	if err := e.srv.Edit("Accounts", "5725767000000000001", map[string]any{"Phone": "1"}); !errors.As(err, &ze) || ze.Code != "INVALID_DATA" {
		t.Fatalf("UI edit of an unknown id: %v", err)
	}
}

func TestUpsert(t *testing.T) {
	e := newEnv(t, withWorld(30, 6, 4))
	id, rec := e.find("Contacts", func(m map[string]any) bool { return m["Email"] != nil })
	email := strings.ToUpper(str(rec["Email"]))
	r := e.req("POST", "Contacts/upsert", map[string]any{"data": []any{
		contact("Updated", email, "Title", "VP"),
		contact("Fresh", "fresh@upsert.example"),
	}}).want(t, 201, "")
	d := r.data()
	if d[0]["action"] != "update" || d[0]["duplicate_field"] != "Email" || str(obj(d[0]["details"])["id"]) != id ||
		d[0]["message"] != "record updated" {
		t.Fatalf("upsert update %v", d[0])
	}
	if d[1]["action"] != "insert" || d[1]["duplicate_field"] != nil || d[1]["message"] != "record added" {
		t.Fatalf("upsert insert %v", d[1])
	}
	if _, has := d[1]["duplicate_field"]; !has {
		t.Fatal("duplicate_field should be present and null on insert")
	}
	if got, _ := e.srv.Record("Contacts", id); got["Last_Name"] != "Updated" || got["Title"] != "VP" {
		t.Fatalf("upserted record %v", got)
	}
	// All updates: 200.
	e.req("POST", "Contacts/upsert", map[string]any{"data": []any{contact("Again", "fresh@upsert.example")}}).want(t, 200, "")

	// Accounts by Account_Name, given explicitly; a non-unique field is refused.
	accID, acc := e.find("Accounts", any2)
	r = e.req("POST", "Accounts/upsert", map[string]any{"duplicate_check_fields": []string{"Account_Name"},
		"data": []any{map[string]any{"Account_Name": acc["Account_Name"], "Phone": "+1 555 000 0000"}}}).want(t, 200, "")
	if r.data()[0]["action"] != "update" || str(obj(r.data()[0]["details"])["id"]) != accID {
		t.Fatalf("account upsert %s", r.raw)
	}
	e.req("POST", "Accounts/upsert", map[string]any{"duplicate_check_fields": []string{"Phone"},
		"data": []any{map[string]any{"Account_Name": "x"}}}).want(t, 400, "INVALID_DATA")

	// Products by Product_Name (the system duplicate field, not unique on insert).
	_, prod := e.find("Products", any2)
	r = e.req("POST", "Products/upsert", map[string]any{"data": []any{
		map[string]any{"Product_Name": prod["Product_Name"], "Unit_Price": 9.999},
		map[string]any{"Unit_Price": 1},
	}}).want(t, 207, "")
	if r.data()[0]["action"] != "update" || r.data()[1]["code"] != "MANDATORY_NOT_FOUND" {
		t.Fatalf("product upsert %s", r.raw)
	}
	if got, _ := e.srv.Record("Products", str(obj(r.data()[0]["details"])["id"])); str(got["Unit_Price"]) != "10" {
		t.Fatalf("currency should round to cents: %v", got["Unit_Price"])
	}
}

func TestNotesAndLookups(t *testing.T) {
	e := newEnv(t, withWorld(20, 5, 3))
	cid, _ := e.find("Contacts", any2)
	r := e.req("POST", "Contacts/"+cid+"/Notes", map[string]any{"data": []any{
		map[string]any{"Note_Title": "From the desk", "Note_Content": "Customer called about ticket #42"},
	}}).want(t, 201, "")
	nid := str(obj(r.data()[0]["details"])["id"])
	note := e.req("GET", "Notes/"+nid, nil).want(t, 200, "").data()[0]
	p := obj(note["Parent_Id"])
	if str(p["id"]) != cid || obj(p["module"])["api_name"] != "Contacts" || note["$se_module"] != "Contacts" {
		t.Fatalf("note %v", note)
	}
	// v8 style Parent_Id body on POST /Notes.
	aid, _ := e.find("Accounts", any2)
	e.req("POST", "Notes", map[string]any{"data": []any{map[string]any{"Note_Content": "c",
		"Parent_Id": map[string]any{"module": map[string]any{"api_name": "Accounts"}, "id": aid}}}}).want(t, 201, "")
	e.req("GET", "Accounts/"+aid+"/Notes?fields=Note_Content", nil).want(t, 200, "")
	r = e.req("POST", "Notes", map[string]any{"data": []any{map[string]any{"Note_Content": "c",
		"Parent_Id": map[string]any{"module": map[string]any{"api_name": "Contacts"}, "id": aid}}}}).want(t, 400, "")
	if obj(r.data()[0]["details"])["api_name"] != "Parent_Id" {
		t.Fatalf("note on a wrong-module parent %s", r.raw)
	}
	e.req("POST", "Contacts/5725767000000000001/Notes", map[string]any{"data": []any{map[string]any{"Note_Content": "c"}}}).
		want(t, 400, "INVALID_DATA")

	// Activities: What_Id finds its module by id; $se_module is rendered.
	r = e.req("POST", "Tasks", map[string]any{"data": []any{map[string]any{"Subject": "Call back",
		"Who_Id": cid, "What_Id": map[string]any{"id": aid}, "Due_Date": "2026-12-01", "Status": "Not Started"}}}).want(t, 201, "")
	task := e.req("GET", "Tasks/"+str(obj(r.data()[0]["details"])["id"]), nil).data()[0]
	if task["$se_module"] != "Accounts" || str(obj(task["What_Id"])["id"]) != aid || str(obj(task["Who_Id"])["id"]) != cid {
		t.Fatalf("task %v", task)
	}
	// Owner must be a user of the org.
	r = e.req("POST", "Tasks", map[string]any{"data": []any{map[string]any{"Subject": "x", "Owner": map[string]any{"id": "1"}}}}).want(t, 400, "")
	if obj(r.data()[0]["details"])["api_name"] != "Owner" {
		t.Fatalf("bad owner %s", r.raw)
	}
}

func TestConcurrentWritesAndReads(t *testing.T) {
	e := newEnv(t, withWorld(50, 5, 3))
	done := make(chan error, 16)
	for g := range 8 {
		go func() {
			for i := range 10 {
				r := e.req("POST", "Contacts", map[string]any{"data": []any{
					contact("C", "g"+strconv.Itoa(g)+"."+strconv.Itoa(i)+"@conc.example")}})
				if r.status != 201 {
					done <- errors.New(string(r.raw))
					return
				}
				e.req("GET", "Contacts?fields=Email&per_page=10", nil)
				e.req("GET", "Contacts/search?word=conc.example", nil)
			}
			done <- nil
		}()
		go func() {
			ids := e.srv.IDs("Contacts")
			for i := range 10 {
				_ = e.srv.Edit("Contacts", ids[(g*10+i)%len(ids)], map[string]any{"Title": "T" + strconv.Itoa(i)})
			}
			done <- nil
		}()
	}
	for range 16 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	r := e.req("GET", "Contacts/search?word=conc.example&per_page=200", nil).want(t, 200, "")
	if len(r.data()) != 80 {
		t.Fatalf("found %d concurrent inserts, want 80", len(r.data()))
	}
}
