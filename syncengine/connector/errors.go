package connector

import (
	"errors"
	"fmt"
	"time"
)

// Class says what to do about an error: it drives retries.
type Class int

// Error classes.
const (
	// Transient: 5xx, timeouts, dropped connections. Retry with backoff.
	Transient Class = iota + 1
	// RateLimited: the system's quota is spent. Retry after RetryAfter.
	RateLimited
	// Auth: credentials are invalid or revoked. Retrying will not help;
	// an admin must re-authorize.
	Auth
	// Permanent: the request or record itself is wrong. Goes to the failure
	// history with its Reason.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	case Auth:
		return "auth"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Reason classifies permanent record errors (SPEC B14).
type Reason string

// Reasons. AlreadyLinked is decided by the engine, not a system.
const (
	ReasonAlreadyLinked    Reason = "already_linked"    // the record is linked to another one already
	ReasonTypeMismatch     Reason = "type_mismatch"     // e.g. text into an integer field
	ReasonMandatoryMissing Reason = "mandatory_missing" // a mandatory field has no value
	ReasonParamMissing     Reason = "param_missing"     // a required parameter is missing
	ReasonParamInvalid     Reason = "param_invalid"     // a parameter or its value is invalid
	ReasonDuplicate        Reason = "duplicate"         // a unique field's value is taken
	ReasonNotFound         Reason = "not_found"         // the record does not exist
	ReasonTooLong          Reason = "too_long"          // a value is longer than the field allows
	ReasonOther            Reason = "other"
)

// Error is every error a connector returns about the system's answer.
type Error struct {
	Class      Class
	Reason     Reason // for Permanent errors
	Field      string // the field involved, when the system says
	Code       string // the system's own code, e.g. INVALID_DATA
	Message    string
	Status     int           // HTTP status, 0 when none came back
	RetryAfter time.Duration // for RateLimited (and Transient when the system said)
	Raw        []byte        // the system's error body, for the failure history
	// DuplicateID is the id of the record a DUPLICATE_DATA error points at.
	DuplicateID string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s error", e.Class)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Reason != "" && e.Class == Permanent {
		s += " (" + string(e.Reason) + ")"
	}
	if e.Field != "" {
		s += " on field " + e.Field
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ClassOf returns the class of err: the Class of an *Error in its chain,
// Transient for anything else (a connection error, a timeout).
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// Retryable reports whether trying again later may succeed.
func Retryable(err error) bool {
	c := ClassOf(err)
	return c == Transient || c == RateLimited
}
