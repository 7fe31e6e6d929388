package connector_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

func TestClassOf(t *testing.T) {
	perm := &connector.Error{Class: connector.Permanent, Reason: connector.ReasonTypeMismatch, Field: "Loyalty_Points__c", Code: "INVALID_DATA", Message: "invalid data"}
	wrapped := fmt.Errorf("writing contact: %w", perm)
	if connector.ClassOf(wrapped) != connector.Permanent || connector.Retryable(wrapped) {
		t.Fatalf("wrapped permanent error classified %v", connector.ClassOf(wrapped))
	}
	if connector.ClassOf(errors.New("connection reset")) != connector.Transient || !connector.Retryable(errors.New("eof")) {
		t.Fatal("unclassified errors must count as transient")
	}
	if !connector.Retryable(&connector.Error{Class: connector.RateLimited}) || connector.Retryable(&connector.Error{Class: connector.Auth}) {
		t.Fatal("rate limits retry, auth failures do not")
	}
	msg := perm.Error()
	for _, want := range []string{"permanent", "INVALID_DATA", "type_mismatch", "Loyalty_Points__c"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

type fake struct{ connector.Connector }

func TestRegistry(t *testing.T) {
	r := connector.NewRegistry()
	r.Register(connector.Desk, func(settings any) (connector.Connector, error) {
		if settings == nil {
			return nil, errors.New("no settings")
		}
		return fake{}, nil
	})
	if _, err := r.New(connector.Desk, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.New(connector.Desk, nil); err == nil || !strings.Contains(err.Error(), "no settings") {
		t.Fatalf("factory error not passed on: %v", err)
	}
	if _, err := r.New(connector.CRM, "x"); err == nil {
		t.Fatal("unknown system accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("double registration did not panic")
		}
	}()
	r.Register(connector.Desk, nil)
}
