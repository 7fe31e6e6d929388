package desk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// The knowledge base: root categories (one per department, SPEC F2),
// sections below them, and articles in either.

var articleStatuses = []string{"Draft", "Published", "Review", "Expired", "Unpublished"}

var articlePermissions = []string{"ALL", "REGISTEREDUSERS", "AGENTS"}

var categoryVisibilities = []string{"ALL_USERS", "REGISTERED_USERS", "AGENTS"}

// descendants lists a category and every category below it.
func (o *org) descendants(id int64) map[int64]bool {
	out := map[int64]bool{id: true}
	changed := true
	for changed {
		changed = false
		o.categories.each(func(k *category) bool {
			if !out[k.id] && out[k.parentID] {
				out[k.id] = true
				changed = true
			}
			return true
		})
	}
	return out
}

// articleCounts counts the articles in each category (directly).
type articleCounts struct{ all, published, public int }

func (o *org) countsByCategory() map[int64]*articleCounts {
	out := map[int64]*articleCounts{}
	o.articles.each(func(a *article) bool {
		if a.trashed {
			return true
		}
		n := out[a.categoryID]
		if n == nil {
			n = &articleCounts{}
			out[a.categoryID] = n
		}
		n.all++
		if a.status == "Published" {
			n.published++
			if a.permission == "ALL" {
				n.public++
			}
		}
		return true
	})
	return out
}

func (c *core) categoryJSON(o *org, k *category, counts map[int64]*articleCounts, withChildren bool) map[string]any {
	var all, published, public, sections int
	below := o.descendants(k.id)
	for id := range below {
		if n := counts[id]; n != nil {
			all += n.all
			published += n.published
			public += n.public
		}
	}
	var children []*category
	o.categories.each(func(x *category) bool {
		if x.parentID == k.id && !x.trashed {
			children = append(children, x)
		}
		return true
	})
	sections = len(children)
	sort.SliceStable(children, func(i, j int) bool { return children[i].order < children[j].order })
	out := map[string]any{
		"id": idStr(k.id), "name": k.name, "description": nullStr(k.description), "locale": k.locale,
		"visibility": k.visibility, "order": strconv.Itoa(k.order), "permalink": k.permalink, "isTrashed": k.trashed,
		"createdTime": timeStr(k.createdTime), "modifiedTime": timeStr(k.modifiedTime),
		"allArticlesCount": count(all), "publishedArticleCount": count(published), "publicArticlesCount": count(public),
		"sectionsCount": count(sections), "rootCategoryId": idStr(k.rootID), "parentCategoryId": idStr(k.parentID),
		"logoUrl": nil, "isFollowing": false,
	}
	if k.parentID == 0 {
		out["status"] = "SHOW_IN_HELPCENTER"
		out["primaryDepartmentId"] = idStr(k.deptID)
		out["associatedDepartmentIds"] = idList([]int64{k.deptID})
		out["articleViewType"] = "LISTVIEW"
		out["isReviewEnabled"] = false
	}
	if withChildren {
		kids := []map[string]any{}
		for _, x := range children {
			kids = append(kids, c.categoryJSON(o, x, counts, true))
		}
		out["children"] = kids
	}
	return out
}

func (c *core) articleJSON(o *org, a *article, full bool) map[string]any {
	var cat any
	if k := o.categories.get(a.categoryID); k != nil {
		cat = map[string]any{"id": idStr(k.id), "name": k.name, "locale": k.locale}
	}
	var published any
	if a.published > 0 {
		published = versionStr(a.published)
	}
	summary := truncate(plainText(a.answer), 250)
	out := map[string]any{
		"id": idStr(a.id), "title": a.title, "summary": summary, "status": a.status, "permission": a.permission,
		"categoryId": idStr(a.categoryID), "rootCategoryId": idStr(a.rootID), "category": cat,
		"departmentId": idStr(a.deptID), "locale": a.locale, "sourceLocale": a.locale, "permalink": a.permalink,
		"portalUrl":   fmt.Sprintf("https://%s/portal/%s/%s/kb/articles/%s", c.host, o.portal, a.locale, a.permalink),
		"webUrl":      fmt.Sprintf("https://%s/support/%s/ShowHomePage.do#Solutions/dv/%d/%s", c.host, o.portal, a.id, a.locale),
		"createdTime": timeStr(a.createdTime), "modifiedTime": timeStr(a.modifiedTime),
		"latestVersion": versionStr(a.version), "currentVersion": versionStr(a.version), "latestPublishedVersion": published,
		"latestVersionStatus": a.status, "viewCount": count(a.viewCount), "likeCount": count(a.likeCount),
		"dislikeCount": count(a.dislikeCount), "feedbackCount": "0", "commentCount": "0", "usageCount": "0",
		"author": o.agentRef(a.authorID), "owner": o.agentRef(a.ownerID), "authorId": idStr(a.authorID),
		"ownerId": idStr(a.ownerID), "creatorId": idStr(a.authorID), "tags": append([]string{}, a.tags...),
		"translationState": "UP-TO-DATE", "isTrashed": a.trashed, "expiryDate": timeStr(a.expiryDate),
		"isTemplate": false, "attachments": []any{},
	}
	if full {
		out["answer"] = a.answer
	}
	return out
}

func versionStr(v int) string { return fmt.Sprintf("%d.%d", 1+(v-1)/10, (v-1)%10) }

// slugify makes a permalink from a title.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// articleInput is an article create or update body.
type articleInput struct {
	Title       *string   `json:"title"`
	Answer      *string   `json:"answer"`
	CategoryID  *string   `json:"categoryId"`
	Status      *string   `json:"status"`
	Permission  *string   `json:"permission"`
	Locale      *string   `json:"locale"`
	Permalink   *string   `json:"permalink"`
	Tags        *[]string `json:"tags"`
	ExpiryDate  *string   `json:"expiryDate"`
	AuthorID    *string   `json:"authorId"`
	SEOTitle    *string   `json:"seoTitle"`
	SEODesc     *string   `json:"seoDescription"`
	SEOKeywords *string   `json:"seoKeywords"`
	SEOEnabled  *bool     `json:"isSEOEnabled"`
}

var articleKeys = []string{"title", "answer", "categoryId", "status", "permission", "locale", "permalink", "tags",
	"expiryDate", "authorId", "seoTitle", "seoDescription", "seoKeywords", "isSEOEnabled"}

// applyArticle validates a body into a; create requires title, answer,
// categoryId, status and locale.
func (c *core) applyArticle(o *org, a *article, body []byte, create bool) *APIError {
	m, e := decodeObject(body)
	if e != nil {
		return e
	}
	for k := range m {
		if !contains(articleKeys, k) && !readOnlyKeys[k] {
			return errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	var in articleInput
	if err := json.Unmarshal(body, &in); err != nil {
		return errInvalidData(invalid("body"))
	}
	var errs []FieldError
	need := func(name string, p *string) {
		if create && (p == nil || strings.TrimSpace(*p) == "") {
			errs = append(errs, missing(name))
		} else if p != nil && strings.TrimSpace(*p) == "" {
			errs = append(errs, invalid(name))
		}
	}
	need("title", in.Title)
	need("answer", in.Answer)
	need("categoryId", in.CategoryID)
	need("status", in.Status)
	need("locale", in.Locale)
	if in.Title != nil && len([]rune(*in.Title)) > 500 {
		errs = append(errs, invalid("title"))
	}
	if in.CategoryID != nil && *in.CategoryID != "" {
		id, ok := parseID(*in.CategoryID)
		k := o.categories.get(id)
		if !ok || k == nil || k.trashed {
			errs = append(errs, invalid("categoryId"))
		} else {
			a.categoryID, a.rootID, a.deptID = k.id, k.rootID, k.deptID
			if k.parentID == 0 {
				a.rootID = k.id
			}
		}
	}
	if in.Status != nil && *in.Status != "" {
		if !contains(articleStatuses, *in.Status) || (create && *in.Status != "Draft" && *in.Status != "Published" && *in.Status != "Review") {
			errs = append(errs, invalid("status"))
		}
	}
	if in.Permission != nil && !contains(articlePermissions, *in.Permission) {
		errs = append(errs, invalid("permission"))
	}
	if in.Locale != nil && *in.Locale != "" && len(*in.Locale) > 10 {
		errs = append(errs, invalid("locale"))
	}
	var expiry int64
	if in.ExpiryDate != nil && *in.ExpiryDate != "" {
		t, ok := parseTime(*in.ExpiryDate)
		if !ok {
			errs = append(errs, invalid("expiryDate"))
		}
		expiry = t
	}
	if in.AuthorID != nil {
		id, ok := parseID(*in.AuthorID)
		if !ok || !o.lookupExists("agents", id) {
			errs = append(errs, invalid("authorId"))
		}
		a.authorID = id
	}
	if in.Permalink != nil && *in.Permalink != "" {
		taken := false
		o.articles.each(func(x *article) bool {
			taken = taken || (x.id != a.id && x.permalink == *in.Permalink)
			return !taken
		})
		if taken {
			errs = append(errs, FieldError{FieldName: "/permalink", ErrorType: "duplicate", ErrorMessage: "The permalink is taken."})
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].FieldName < errs[j].FieldName })
		return errInvalidData(errs...)
	}
	if in.Title != nil {
		a.title = *in.Title
	}
	if in.Answer != nil {
		a.answer = *in.Answer
	}
	if in.Status != nil {
		a.status = *in.Status
	}
	if in.Permission != nil {
		a.permission = *in.Permission
	}
	if in.Locale != nil {
		a.locale = *in.Locale
	}
	if in.Tags != nil {
		a.tags = append([]string(nil), (*in.Tags)...)
	}
	if in.ExpiryDate != nil {
		a.expiryDate = expiry
	}
	if in.Permalink != nil && *in.Permalink != "" {
		a.permalink = *in.Permalink
	}
	return nil
}

func (c *core) createArticle(o *org, act actor, body []byte) (*article, *APIError) {
	a := &article{permission: "ALL", authorID: act.agentID, ownerID: act.agentID, version: 1}
	if e := c.applyArticle(o, a, body, true); e != nil {
		return nil, e
	}
	a.id = o.newID()
	a.createdTime, a.modifiedTime = c.now(), c.now()
	if a.permalink == "" {
		a.permalink = o.uniquePermalink(slugify(a.title), a.id)
	}
	if a.status == "Published" {
		a.published = a.version
	}
	o.articles.put(a.id, a)
	c.emit(o, act, event{typ: "Article_Add", payload: c.articleJSON(o, a, true)})
	return a, nil
}

func (o *org) uniquePermalink(base string, id int64) string {
	if base == "" {
		base = "article"
	}
	taken := false
	o.articles.each(func(x *article) bool {
		taken = taken || x.permalink == base
		return !taken
	})
	if !taken {
		return base
	}
	return base + "-" + strconv.FormatInt(id%100000, 10)
}

func (c *core) updateArticle(o *org, act actor, a *article, body []byte) *APIError {
	before := c.articleJSON(o, a, true)
	updated := *a
	updated.tags = append([]string(nil), a.tags...)
	if e := c.applyArticle(o, &updated, body, false); e != nil {
		return e
	}
	*a = updated
	after := c.articleJSON(o, a, true)
	prev, changed := diff(before, after)
	if changed == nil {
		return nil
	}
	a.version++
	if a.status == "Published" {
		a.published = a.version
	}
	a.modifiedTime = c.now()
	after = c.articleJSON(o, a, true)
	c.emit(o, act, event{typ: "Article_Update", payload: after, prev: prev, changed: changed})
	return nil
}

func (c *core) trashArticle(o *org, act actor, a *article) {
	a.trashed = true
	a.modifiedTime = c.now()
	c.addTrash(o, "Articles", a.id, a.title, a.deptID, act, 0)
	c.emit(o, act, event{typ: "Article_Delete", payload: c.articleJSON(o, a, true)})
}

// articleFilter is the parsed query of the article list, count and search.
type articleFilter struct {
	categories  map[int64]bool
	statuses    []string
	permissions []string
	deptID      int64
	authorID    int64
	modified    timeRange
	created     timeRange
	expiry      timeRange
	title, all  string
}

func parseArticleFilter(o *org, q map[string][]string, search bool) (articleFilter, *APIError) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var f articleFilter
	if v := get("categoryId"); v != "" {
		id, ok := parseID(v)
		if !ok || o.categories.get(id) == nil {
			return f, errBadParam("categoryId")
		}
		f.categories = o.descendants(id)
	}
	for _, s := range splitList(get("status")) {
		if !contains(articleStatuses, s) {
			return f, errBadParam("status")
		}
		f.statuses = append(f.statuses, s)
	}
	for _, p := range splitList(get("permission")) {
		if !contains(articlePermissions, p) {
			return f, errBadParam("permission")
		}
		f.permissions = append(f.permissions, p)
	}
	for name, dst := range map[string]*int64{"departmentId": &f.deptID, "authorId": &f.authorID} {
		if v := get(name); v != "" {
			id, ok := parseID(v)
			if !ok {
				return f, errBadParam(name)
			}
			*dst = id
		}
	}
	var e *APIError
	if f.modified, e = parseRange(q, "modifiedTimeRange"); e != nil {
		return f, e
	}
	if f.created, e = parseRange(q, "createdTimeRange"); e != nil {
		return f, e
	}
	if f.expiry, e = parseRange(q, "expiryTimeRange"); e != nil {
		return f, e
	}
	if search {
		f.title, f.all = get("title"), get("_all")
	}
	return f, nil
}

func (f *articleFilter) match(a *article) bool {
	switch {
	case a.trashed:
		return false
	case f.categories != nil && !f.categories[a.categoryID]:
		return false
	case len(f.statuses) > 0 && !contains(f.statuses, a.status):
		return false
	case len(f.permissions) > 0 && !contains(f.permissions, a.permission):
		return false
	case f.deptID != 0 && a.deptID != f.deptID:
		return false
	case f.authorID != 0 && a.authorID != f.authorID:
		return false
	case !f.modified.contains(a.modifiedTime) || !f.created.contains(a.createdTime) || !f.expiry.contains(a.expiryDate):
		return false
	case f.title != "" && !matchText(f.title, a.title) && !containsFold(f.title, a.title):
		return false
	case f.all != "" && !containsFold(f.all, a.title, plainText(a.answer), strings.Join(a.tags, " ")):
		return false
	}
	return true
}

func (o *org) filterArticles(f articleFilter) []*article {
	var rows []*article
	o.articles.each(func(a *article) bool {
		if f.match(a) {
			rows = append(rows, a)
		}
		return true
	})
	return rows
}

func sortArticles(rows []*article, s sortSpec) {
	id := func(a *article) int64 { return a.id }
	switch s.key {
	case "", "createdTime":
		sortByInt(rows, func(a *article) int64 { return a.createdTime }, id, s.desc, s.keep)
	case "relevance":
		sortByInt(rows, func(a *article) int64 { return a.modifiedTime }, id, true, s.keep)
	case "modifiedTime":
		sortByInt(rows, func(a *article) int64 { return a.modifiedTime }, id, s.desc, s.keep)
	case "likeCount":
		sortByInt(rows, func(a *article) int64 { return int64(a.likeCount) }, id, s.desc, s.keep)
	case "viewCount":
		sortByInt(rows, func(a *article) int64 { return int64(a.viewCount) }, id, s.desc, s.keep)
	case "dislikeCount":
		sortByInt(rows, func(a *article) int64 { return int64(a.dislikeCount) }, id, s.desc, s.keep)
	case "feedbackCount":
		sortByInt(rows, func(a *article) int64 { return 0 }, id, s.desc, s.keep)
	}
}

// sectionInput is a kbSections body.
type sectionInput struct {
	Name             *string `json:"name"`
	Description      *string `json:"description"`
	ParentCategoryID *string `json:"parentCategoryId"`
	Visibility       *string `json:"visibility"`
	Order            *int    `json:"order"`
}

func (c *core) applySection(o *org, k *category, body []byte, create bool) *APIError {
	m, e := decodeObject(body)
	if e != nil {
		return e
	}
	for key := range m {
		if key != "name" && key != "description" && key != "parentCategoryId" && key != "visibility" && key != "order" && !readOnlyKeys[key] {
			return errUnprocessable("An extra parameter '" + key + "' is found")
		}
	}
	var in sectionInput
	if err := json.Unmarshal(body, &in); err != nil {
		return errInvalidData(invalid("body"))
	}
	var errs []FieldError
	if in.Name != nil && strings.TrimSpace(*in.Name) == "" || create && in.Name == nil {
		errs = append(errs, missing("name"))
	}
	if in.ParentCategoryID != nil {
		id, ok := parseID(*in.ParentCategoryID)
		parent := o.categories.get(id)
		if !ok || parent == nil || parent.trashed || k.id != 0 && o.descendants(k.id)[id] {
			errs = append(errs, invalid("parentCategoryId"))
		} else {
			k.parentID, k.rootID, k.deptID, k.locale = parent.id, parent.rootID, parent.deptID, parent.locale
			if parent.parentID == 0 {
				k.rootID = parent.id
			}
			if k.visibility == "" {
				k.visibility = parent.visibility
			}
		}
	} else if create {
		errs = append(errs, missing("parentCategoryId"))
	}
	if in.Visibility != nil && !contains(categoryVisibilities, *in.Visibility) {
		errs = append(errs, invalid("visibility"))
	}
	if len(errs) > 0 {
		return errInvalidData(errs...)
	}
	if in.Name != nil {
		k.name = *in.Name
		if k.permalink == "" {
			k.permalink = slugify(k.name)
		}
	}
	if in.Description != nil {
		k.description = *in.Description
	}
	if in.Visibility != nil {
		k.visibility = *in.Visibility
	}
	if in.Order != nil {
		k.order = *in.Order
	}
	return nil
}

func (c *core) kbRoutes(mux *http.ServeMux) {
	c.handle(mux, "GET /api/v1/kbRootCategories", true, func(cl *call) (reply, *APIError) {
		o := cl.org
		counts := o.countsByCategory()
		var out []map[string]any
		o.categories.each(func(k *category) bool {
			if k.parentID == 0 && !k.trashed {
				out = append(out, c.categoryJSON(o, k, counts, false))
			}
			return true
		})
		return list(out)
	})
	root := func(cl *call) (*category, *APIError) {
		id, e := cl.pathID("rootCategoryId")
		if e != nil {
			return nil, e
		}
		k := cl.org.categories.get(id)
		if k == nil || k.parentID != 0 || k.trashed {
			return nil, errNotFound()
		}
		return k, nil
	}
	c.handle(mux, "GET /api/v1/kbRootCategories/{rootCategoryId}", true, func(cl *call) (reply, *APIError) {
		k, e := root(cl)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.categoryJSON(cl.org, k, cl.org.countsByCategory(), false))
	})
	c.handle(mux, "GET /api/v1/kbRootCategories/{rootCategoryId}/categoryTree", true, func(cl *call) (reply, *APIError) {
		k, e := root(cl)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.categoryJSON(cl.org, k, cl.org.countsByCategory(), true))
	})
	section := func(cl *call) (*category, *APIError) {
		id, e := cl.pathID("sectionId")
		if e != nil {
			return nil, e
		}
		k := cl.org.categories.get(id)
		if k == nil || k.parentID == 0 || k.trashed {
			return nil, errNotFound()
		}
		return k, nil
	}
	c.handle(mux, "GET /api/v1/kbSections/{sectionId}", true, func(cl *call) (reply, *APIError) {
		k, e := section(cl)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.categoryJSON(cl.org, k, cl.org.countsByCategory(), false))
	})
	c.handle(mux, "POST /api/v1/kbSections", true, func(cl *call) (reply, *APIError) {
		o := cl.org
		k := &category{}
		if e := c.applySection(o, k, cl.body, true); e != nil {
			return fail(e)
		}
		k.id = o.newID()
		k.createdTime, k.modifiedTime = c.now(), c.now()
		o.categories.put(k.id, k)
		payload := c.categoryJSON(o, k, o.countsByCategory(), false)
		c.emit(o, cl.act, event{typ: "KBSection_Add", deptID: k.deptID, payload: payload})
		return okJSON(payload)
	})
	c.handle(mux, "PATCH /api/v1/kbSections/{sectionId}", true, func(cl *call) (reply, *APIError) {
		k, e := section(cl)
		if e != nil {
			return fail(e)
		}
		o := cl.org
		counts := o.countsByCategory()
		before := c.categoryJSON(o, k, counts, false)
		updated := *k
		if e := c.applySection(o, &updated, cl.body, false); e != nil {
			return fail(e)
		}
		*k = updated
		after := c.categoryJSON(o, k, counts, false)
		if prev, changed := diff(before, after); changed != nil {
			k.modifiedTime = c.now()
			after["modifiedTime"] = timeStr(k.modifiedTime)
			c.emit(o, cl.act, event{typ: "KBSection_Update", deptID: k.deptID, payload: after, prev: prev, changed: changed})
		}
		return okJSON(after)
	})

	c.handle(mux, "GET /api/v1/articles", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 50)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "createdTime", "modifiedTime", "likeCount", "viewCount", "feedbackCount", "dislikeCount")
		if e != nil {
			return fail(e)
		}
		f, e := parseArticleFilter(cl.org, cl.q, false)
		if e != nil {
			return fail(e)
		}
		rows := cl.org.filterArticles(f)
		sortArticles(rows, s.upTo(p))
		var out []map[string]any
		for _, a := range window(rows, p) {
			out = append(out, c.articleJSON(cl.org, a, false))
		}
		return list(out)
	})
	c.handle(mux, "GET /api/v1/articles/count", true, func(cl *call) (reply, *APIError) {
		f, e := parseArticleFilter(cl.org, cl.q, false)
		if e != nil {
			return fail(e)
		}
		return okJSON(map[string]any{"count": len(cl.org.filterArticles(f))})
	})
	c.handle(mux, "GET /api/v1/articles/search", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 0, 10, 100)
		if e != nil {
			return fail(e)
		}
		s, e := parseSort(cl.q, "relevance", "modifiedTime", "createdTime")
		if e != nil {
			return fail(e)
		}
		if s.key == "" {
			s.key = "relevance"
		}
		if e := allowParams(cl.q, "title", "categoryId", "departmentId", "_all", "status", "permission", "authorId",
			"createdTimeRange", "modifiedTimeRange", "expiryTimeRange"); e != nil {
			return fail(e)
		}
		f, e := parseArticleFilter(cl.org, cl.q, true)
		if e != nil {
			return fail(e)
		}
		rows := cl.org.filterArticles(f)
		sortArticles(rows, s.upTo(p))
		var out []map[string]any
		for _, a := range window(rows, p) {
			out = append(out, c.articleJSON(cl.org, a, false))
		}
		return searchResult(out, len(rows))
	})
	c.handle(mux, "GET /api/v1/articles/{id}", true, func(cl *call) (reply, *APIError) {
		a, e := cl.article()
		if e != nil {
			return fail(e)
		}
		return okJSON(c.articleJSON(cl.org, a, true))
	})
	c.handle(mux, "POST /api/v1/articles", true, func(cl *call) (reply, *APIError) {
		a, e := c.createArticle(cl.org, cl.act, cl.body)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.articleJSON(cl.org, a, true))
	})
	c.handle(mux, "PATCH /api/v1/articles/{id}", true, func(cl *call) (reply, *APIError) {
		a, e := cl.article()
		if e != nil {
			return fail(e)
		}
		if a.trashed {
			return fail(errUnprocessable("The article is in the recycle bin."))
		}
		if e := c.updateArticle(cl.org, cl.act, a, cl.body); e != nil {
			return fail(e)
		}
		return okJSON(c.articleJSON(cl.org, a, true))
	})
	c.handle(mux, "POST /api/v1/articles/moveToTrash", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "ids")
		if e != nil {
			return fail(e)
		}
		var results []map[string]any
		for _, id := range ids {
			a := cl.org.articles.get(id)
			if a == nil || a.trashed {
				results = append(results, massResult(id, false))
				continue
			}
			c.trashArticle(cl.org, cl.act, a)
			results = append(results, massResult(id, true))
		}
		return okJSON(map[string]any{"results": results})
	})
}

func (cl *call) article() (*article, *APIError) {
	id, e := cl.pathID("id")
	if e != nil {
		return nil, e
	}
	a := cl.org.articles.get(id)
	if a == nil {
		return nil, errNotFound()
	}
	return a, nil
}

// allowParams refuses query parameters a search does not know, so a
// misspelt filter fails loudly instead of matching everything.
func allowParams(q map[string][]string, allowed ...string) *APIError {
	for k := range q {
		switch k {
		case "from", "limit", "sortBy", "orgId", "include":
			continue
		}
		if !contains(allowed, k) {
			return errUnprocessable("An extra parameter '" + k + "' is found")
		}
	}
	return nil
}
