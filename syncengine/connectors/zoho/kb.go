package zoho

import (
	"context"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The knowledge-base sync's view of Zoho (SPEC F2, docs/KB.md): the desk's
// category tree and article pages with plain types, so syncengine finds
// them by type assertion without naming this package. SalesIQ's side is
// the portal tool of connector.ChatAccount (salesiq_chat.go), whose
// article calls (salesiq.go) the sync uses.

// KBCategories lists every category of the knowledge base: each root
// category, then the sections below it, parents before children. Each
// record's Fields hold "name", "parentCategoryId" ("" for a root),
// "rootCategoryId", "visibility" and "isTrashed"; trashed sections are left
// out.
func (d *Desk) KBCategories(ctx context.Context) ([]connector.Record, error) {
	roots, err := d.ListCategories(ctx)
	if err != nil {
		return nil, err
	}
	var out []connector.Record
	for _, root := range roots {
		tree, err := d.CategoryTree(ctx, root.ID)
		if err != nil {
			return nil, err
		}
		flattenKBTree(tree.ID, tree.Fields, "", root.ID, &out)
	}
	return out, nil
}

func flattenKBTree(id string, node map[string]any, parent, root string, out *[]connector.Record) {
	if node["isTrashed"] == true {
		return
	}
	*out = append(*out, connector.Record{ID: id, Fields: map[string]any{
		"name": str(node["name"]), "parentCategoryId": parent, "rootCategoryId": root,
		"visibility": str(node["visibility"]), "isTrashed": false,
	}})
	kids, _ := node["children"].([]any)
	for _, k := range kids {
		child, ok := k.(map[string]any)
		if !ok {
			continue
		}
		flattenKBTree(str(child["id"]), child, id, root, out)
	}
}

// KBArticles lists one page of the articles of a category and the sections
// below it, with status (e.g. "Published"; "" = any), from the 1-based
// position from, at most limit (50 at most). Items carry the summary, not
// the answer: read an article with Get(ctx, "articles", id) for that.
func (d *Desk) KBArticles(ctx context.Context, categoryID, status string, from, limit int) ([]connector.Record, error) {
	return d.ListArticles(ctx, ArticleQuery{CategoryID: categoryID, Status: status, From: from, Limit: limit})
}
