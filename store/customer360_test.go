package store_test

import (
	"context"
	"testing"

	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/storetest"
)

// Reads through PreparedReads answer like the pool, and a statement whose
// result columns a migration changed is prepared afresh instead of failing
// with "cached plan must not change result type".
func TestPreparedReadsSurviveAChangedResultType(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	reads := store.NewPreparedReads(db)
	db.MustExec(`CREATE TABLE prepared_probe (id bigint, v int)`)
	db.MustExec(`INSERT INTO prepared_probe VALUES (1, 7)`)
	db.SetMaxOpenConns(1) // one connection: the statement prepared on it is the one reused
	const query = `SELECT v FROM prepared_probe WHERE id = $1`
	for range 3 {
		var v int
		if err := reads.GetContext(ctx, &v, query, 1); err != nil || v != 7 {
			t.Fatalf("GetContext = %d, %v", v, err)
		}
	}
	db.MustExec(`ALTER TABLE prepared_probe ALTER COLUMN v TYPE text`)
	for range 2 {
		var v string
		if err := reads.GetContext(ctx, &v, query, 1); err != nil || v != "7" {
			t.Fatalf("GetContext after the type change = %q, %v", v, err)
		}
		var vs []string
		if err := reads.SelectContext(ctx, &vs, query, 1); err != nil || len(vs) != 1 || vs[0] != "7" {
			t.Fatalf("SelectContext after the type change = %q, %v", vs, err)
		}
	}
}
