package desk_test

import (
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/sandbox/desk"
)

func TestKnowledgeBaseFilters(t *testing.T) {
	e := newEnv(t, withWorld(1000)) // 100 articles in 6 categories
	roots := e.get("/api/v1/kbRootCategories").data(t)
	if len(roots) != 5 {
		t.Fatalf("%d root categories", len(roots))
	}
	depts := map[string]bool{}
	for _, r := range roots {
		ids := r["associatedDepartmentIds"].([]any)
		if len(ids) != 1 {
			t.Fatalf("a category belongs to one department: %v", r)
		}
		depts[ids[0].(string)] = true
	}
	if len(depts) != 3 {
		t.Fatalf("roots spread over %d departments", len(depts))
	}
	wantError(t, e.get("/api/v1/articles?limit=51"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/articles?from=0"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/articles?status=Lost"), 422, "UNPROCESSABLE_ENTITY")
	wantError(t, e.get("/api/v1/articles?permission=EVERYONE"), 422, "UNPROCESSABLE_ENTITY")

	countOf := func(query string) int {
		t.Helper()
		return int(e.get("/api/v1/articles/count?" + query).obj(t)["count"].(float64))
	}
	listAll := func(query string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for from := 1; ; from += 50 {
			r := e.get("/api/v1/articles?limit=50&from=" + strconv.Itoa(from) + "&" + query)
			if r.status == 204 {
				return out
			}
			out = append(out, r.data(t)...)
		}
	}
	all := listAll("")
	if len(all) != 100 || countOf("") != 100 {
		t.Fatalf("%d articles listed, count %d", len(all), countOf(""))
	}
	if _, has := all[0]["answer"]; has {
		t.Fatalf("lists carry the summary, not the answer")
	}
	published := listAll("status=Published&permission=ALL")
	if len(published) == 0 || len(published) != countOf("status=Published&permission=ALL") {
		t.Fatalf("published public %d", len(published))
	}
	for _, a := range published {
		if a["status"] != "Published" || a["permission"] != "ALL" {
			t.Fatalf("filter leaked %v", a)
		}
	}
	both := countOf("permission=" + url.QueryEscape("ALL,REGISTEREDUSERS"))
	if both <= len(listAll("permission=ALL")) || both >= 100 {
		t.Fatalf("permission list %d", both)
	}
	agentsOnly := listAll("permission=AGENTS")
	if len(agentsOnly) == 0 {
		t.Fatal("no AGENTS articles seeded")
	}

	// A root category's id covers its sections.
	root := roots[0]["id"].(string)
	tree := e.get("/api/v1/kbRootCategories/" + root + "/categoryTree").obj(t)
	inTree := map[string]bool{root: true}
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		for _, c := range n["children"].([]any) {
			child := c.(map[string]any)
			inTree[child["id"].(string)] = true
			walk(child)
		}
	}
	walk(tree)
	under := listAll("categoryId=" + root)
	if len(under) == 0 || tree["allArticlesCount"] != strconv.Itoa(len(under)) {
		t.Fatalf("root %s: %d listed, tree says %v", root, len(under), tree["allArticlesCount"])
	}
	for _, a := range under {
		if !inTree[a["categoryId"].(string)] || a["rootCategoryId"] != root {
			t.Fatalf("article outside the tree: %v", a)
		}
	}

	sorted := e.get("/api/v1/articles?limit=50&sortBy=-modifiedTime").data(t)
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1]["modifiedTime"].(string) < sorted[i]["modifiedTime"].(string) {
			t.Fatal("not sorted by -modifiedTime")
		}
	}
	since := worldNow.Add(-30 * 24 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	recent := countOf("modifiedTimeRange=" + url.QueryEscape(since+","+worldNow.Format("2006-01-02T15:04:05.000Z")))
	if recent == 0 || recent == 100 {
		t.Fatalf("modifiedTimeRange matched %d", recent)
	}

	one := e.get("/api/v1/articles/" + all[0]["id"].(string)).obj(t)
	if one["answer"] == nil || one["latestVersion"] == nil || one["viewCount"] == nil {
		t.Fatalf("article %v", one)
	}
	title := one["title"].(string)
	hit := e.get("/api/v1/articles/search?from=0&title=" + url.QueryEscape(title)).obj(t)
	if hit["count"].(float64) < 1 || hit["data"].([]any)[0].(map[string]any)["id"] != one["id"] {
		t.Fatalf("title search %v", hit)
	}
	if r := e.get("/api/v1/articles/search?_all=zzzzzz"); r.status != 204 {
		t.Fatalf("no hit %d", r.status)
	}
}

func TestArticleWrites(t *testing.T) {
	e := newEnv(t, withWorld(100))
	rc := newReceiver(t, 200)
	e.post("/api/v1/webhooks", map[string]any{"url": rc.srv.URL, "subscriptions": map[string]any{
		"Article_Add": nil, "Article_Update": map[string]any{"includePrevState": true}, "Article_Delete": nil, "KBSection_Add": nil}})
	root := e.get("/api/v1/kbRootCategories").data(t)[0]["id"].(string)
	wantError(t, e.post("/api/v1/articles", map[string]any{"title": "t"}), 422, "INVALID_DATA",
		"/answer:missing", "/categoryId:missing", "/locale:missing", "/status:missing")
	sec := e.post("/api/v1/kbSections", map[string]any{"name": "Returns", "parentCategoryId": root})
	if sec.status != 200 {
		t.Fatalf("section %d %s", sec.status, sec.raw)
	}
	section := sec.obj(t)["id"].(string)
	r := e.post("/api/v1/articles", map[string]any{"title": "How returns work", "answer": "<p>Ship it back.</p>",
		"categoryId": section, "status": "Draft", "locale": "en", "permission": "REGISTEREDUSERS"})
	if r.status != 200 {
		t.Fatalf("create %d %s", r.status, r.raw)
	}
	a := r.obj(t)
	if a["permalink"] != "how-returns-work" || a["rootCategoryId"] != root || a["latestPublishedVersion"] != nil {
		t.Fatalf("article %v", a)
	}
	id := a["id"].(string)
	pub := e.patch("/api/v1/articles/"+id, map[string]any{"status": "Published"}).obj(t)
	if pub["latestVersion"] != "1.1" || pub["latestPublishedVersion"] != "1.1" {
		t.Fatalf("published %v", pub)
	}
	res := e.post("/api/v1/articles/moveToTrash", map[string]any{"ids": []string{id, "1234567890123456"}}).obj(t)
	results := res["results"].([]any)
	if results[0].(map[string]any)["success"] != true || results[1].(map[string]any)["success"] != false {
		t.Fatalf("trash results %v", results)
	}
	e.flush()
	got := rc.take()
	if types := eventTypes(got); !reflect.DeepEqual(types, []string{"KBSection_Add", "Article_Add", "Article_Update", "Article_Delete"}) {
		t.Fatalf("events %v", types)
	}
	if got[2]["prevState"].(map[string]any)["status"] != "Draft" {
		t.Fatalf("prevState %v", got[2]["prevState"])
	}
	if _, err := e.desk.UpdateArticle(id, desk.Fields{"title": "x"}); err == nil {
		t.Fatal("updating a trashed article should fail")
	}
}
