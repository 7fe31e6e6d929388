package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// A small stand-in for gqlgen's output: lists of plain records, of records
// with a resolver, of records that reach a resolver two calls down through
// a cycle, and one through an interface.
const generatedSample = `package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

type executionContext struct{}

func (ec *executionContext) marshalPlainList(ctx context.Context, sel ast.SelectionSet, v []*Plain) graphql.Marshaler {
	ret := graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec._Plain(ctx, sel, v[i])
	})
	return ret
}

func (ec *executionContext) _Plain(ctx context.Context, sel ast.SelectionSet, obj *Plain) graphql.Marshaler {
	out := graphql.NewFieldSet(nil)
	out.Values[0] = ec._Plain_name(ctx, obj)
	ec.Error(ctx, nil)
	return out
}

func (ec *executionContext) _Plain_name(ctx context.Context, obj *Plain) graphql.Marshaler { return nil }

func (ec *executionContext) marshalResolvedList(ctx context.Context, sel ast.SelectionSet, v []*Resolved) graphql.Marshaler {
	return graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec._Resolved(ctx, sel, v[i])
	})
}

func (ec *executionContext) _Resolved(ctx context.Context, sel ast.SelectionSet, obj *Resolved) graphql.Marshaler {
	out := graphql.NewFieldSet(nil)
	out.Concurrently(0, func(ctx context.Context) graphql.Marshaler { return nil })
	return out
}

func (ec *executionContext) marshalDeepList(ctx context.Context, sel ast.SelectionSet, v []*Deep) graphql.Marshaler {
	return graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec._Deep(ctx, sel, v[i])
	})
}

// _Deep and _Back call each other; only _Back reaches _Resolved.
func (ec *executionContext) _Deep(ctx context.Context, sel ast.SelectionSet, obj *Deep) graphql.Marshaler {
	return ec._Back(ctx, sel, nil)
}

func (ec *executionContext) _Back(ctx context.Context, sel ast.SelectionSet, obj *Deep) graphql.Marshaler {
	if obj == nil {
		return ec._Deep(ctx, sel, obj)
	}
	return ec._Resolved(ctx, sel, nil)
}

func (ec *executionContext) marshalNodeList(ctx context.Context, sel ast.SelectionSet, v []Node) graphql.Marshaler {
	return graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec._Node(ctx, sel, v[i])
	})
}

func (ec *executionContext) _Node(ctx context.Context, sel ast.SelectionSet, obj Node) graphql.Marshaler {
	switch obj := obj.(type) {
	case *Plain:
		return ec._Plain(ctx, sel, obj)
	default:
		return ec._Resolved(ctx, sel, nil)
	}
}
`

// listCalls maps each list marshaler of src to the helper it calls.
func listCalls(t *testing.T, src string) map[string]string {
	t.Helper()
	funcs := regexp.MustCompile(`(?m)^func \(ec \*executionContext\) ([^(\s]+)\(`).FindAllStringSubmatchIndex(src, -1)
	out := map[string]string{}
	for i, f := range funcs {
		end := len(src)
		if i+1 < len(funcs) {
			end = funcs[i+1][0]
		}
		body, name := src[f[1]:end], src[f[2]:f[3]]
		switch {
		case strings.Contains(body, inOrderHelper+"("):
			out[name] = "in order"
		case strings.Contains(body, "graphql.MarshalSliceConcurrently("):
			out[name] = "concurrently"
		}
	}
	return out
}

func TestOnlyListsThatReachNoResolverMarshalInOrder(t *testing.T) {
	out, n, err := marshalPlainListsInOrder([]byte(generatedSample))
	if err != nil {
		t.Fatal(err)
	}
	got := listCalls(t, string(out))
	want := map[string]string{
		"marshalPlainList":    "in order",
		"marshalResolvedList": "concurrently",
		"marshalDeepList":     "concurrently", // through the _Deep/_Back cycle
		"marshalNodeList":     "concurrently", // one implementor has a resolver
	}
	for name, how := range want {
		if got[name] != how {
			t.Errorf("%s marshals %q, want %q", name, got[name], how)
		}
	}
	if n != 1 {
		t.Errorf("rewrote %d lists, want 1", n)
	}
	// The rewritten call keeps the context, the length and the element
	// function, and drops gqlgen's worker limit and panic switch.
	if !strings.Contains(string(out), "ret := "+inOrderHelper+"(ctx, len(v), func(ctx context.Context, i int) graphql.Marshaler {\n\t\treturn ec._Plain(ctx, sel, v[i])") {
		t.Errorf("rewritten call lost its arguments:\n%s", out)
	}
}

// The committed graph/ is graphgen's output (make check-generated proves it
// is fresh); this pins what the rewrite means for the customer sidebar:
// the deal, note and activity edges marshal in order, and the ticket edges
// stay concurrent because a ticket has resolvers (its contact, account and
// customer).
func TestGeneratedSidebarListsMarshalAsExpected(t *testing.T) {
	src, err := os.ReadFile("../../graph/generated.go")
	if err != nil {
		t.Fatal(err)
	}
	got := listCalls(t, string(src))
	byElement := map[string]string{}
	for name, how := range got {
		byElement[strings.TrimSuffix(name[strings.LastIndex(name, "ᚐ")+len("ᚐ"):], "ᚄ")] = how
	}
	for element, how := range map[string]string{
		"DealEdge": "in order", "NoteEdge": "in order", "ActivityEdge": "in order",
		"TicketEdge": "concurrently", "DeskContactEdge": "concurrently",
	} {
		if byElement[element] != how {
			t.Errorf("[%s] marshals %q, want %q", element, byElement[element], how)
		}
	}
	if _, err := os.Stat("../../graph/" + helperFile); err != nil {
		t.Errorf("the helper file is missing: %v", err)
	}
}
