package zoho

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// maxRateWait caps how long a rate-limit header may make one request wait
// inside the connector; beyond it the error goes back to the engine with
// RetryAfter set and the engine schedules the retry.
const maxRateWait = 5 * time.Minute

// statusClass is the class of an HTTP status when the body says nothing
// more useful.
func statusClass(status int) connector.Class {
	switch {
	case status == http.StatusTooManyRequests:
		return connector.RateLimited
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return connector.Auth
	case status >= 500 || status == http.StatusRequestTimeout:
		return connector.Transient
	}
	return connector.Permanent
}

// retryAfterHeader reads Retry-After (seconds or an HTTP date), then CRM's
// X-RATELIMIT-RESET (epoch milliseconds).
func retryAfterHeader(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
			return clampWait(time.Duration(n * float64(time.Second)))
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampWait(t.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("X-RATELIMIT-RESET")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return clampWait(time.UnixMilli(n).Sub(now))
		}
	}
	return 0
}

func clampWait(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > maxRateWait {
		return maxRateWait
	}
	return d
}

// crmErrorBody is CRM's request-level error and also one element of a
// write's data array.
type crmErrorBody struct {
	Code    string         `json:"code"`
	Details map[string]any `json:"details"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
}

// classifyCRM reads a CRM or Bigin answer (reference §2.7).
func classifyCRM(status int, h http.Header, body []byte, now time.Time) *vendorError {
	if status < 300 || status == http.StatusNotModified {
		return nil
	}
	var b crmErrorBody
	_ = json.Unmarshal(body, &b)
	e := &connector.Error{Class: statusClass(status), Code: b.Code, Message: b.Message, Status: status, Raw: truncate(body)}
	switch {
	case status == http.StatusTooManyRequests || b.Code == "TOO_MANY_REQUESTS":
		e.Class = connector.RateLimited
		e.RetryAfter = retryAfterHeader(h, now)
		return &vendorError{err: e, safe: true}
	case status == http.StatusServiceUnavailable:
		e.Class, e.RetryAfter = connector.Transient, retryAfterHeader(h, now)
		return &vendorError{err: e, safe: true}
	case status >= 500:
		e.Class = connector.Transient
		return &vendorError{err: e}
	case status == http.StatusUnauthorized && (b.Code == "INVALID_TOKEN" || b.Code == "AUTHENTICATION_FAILURE" || b.Code == ""):
		return &vendorError{err: e, tokenExpired: true, safe: true}
	case status == http.StatusUnauthorized || b.Code == "OAUTH_SCOPE_MISMATCH" || b.Code == "NO_PERMISSION":
		e.Class = connector.Auth
		return &vendorError{err: e}
	}
	e.Class = connector.Permanent
	crmReason(e, b)
	if status == http.StatusNotFound && e.Reason == connector.ReasonOther {
		e.Reason = connector.ReasonNotFound
	}
	return &vendorError{err: e}
}

// crmRecordError turns one failed element of a CRM write answer into a
// B14-classified error.
func crmRecordError(raw json.RawMessage) *connector.Error {
	var b crmErrorBody
	_ = json.Unmarshal(raw, &b)
	e := &connector.Error{Class: connector.Permanent, Code: b.Code, Message: b.Message, Raw: truncate(raw)}
	if b.Code == "MULTIPLE_OR_MULTI_ERRORS" {
		// Report the first error; Raw keeps them all.
		if errs, ok := b.Details["errors"].([]any); ok && len(errs) > 0 {
			if first, err := json.Marshal(errs[0]); err == nil {
				inner := crmRecordError(first)
				inner.Raw = e.Raw
				inner.Message = b.Message + ": " + inner.Message
				return inner
			}
		}
	}
	switch b.Code {
	case "TOO_MANY_REQUESTS":
		e.Class = connector.RateLimited
	case "INTERNAL_ERROR", "INTERNAL_SERVER_ERROR":
		e.Class = connector.Transient
	case "RECORD_LOCKED":
		// Locked by an approval or a running process: worth a later retry.
		e.Class = connector.Transient
	}
	crmReason(e, b)
	return e
}

// crmReason fills Reason, Field and DuplicateID from a CRM error body.
func crmReason(e *connector.Error, b crmErrorBody) {
	d := b.Details
	e.Field = firstNonEmpty(str(d["api_name"]), str(d["param_name"]), str(d["param"]))
	switch b.Code {
	case "MANDATORY_NOT_FOUND", "DEPENDENT_FIELD_MISSING":
		e.Reason = connector.ReasonMandatoryMissing
	case "REQUIRED_PARAM_MISSING", "EXPECTED_FIELD_MISSING":
		e.Reason = connector.ReasonParamMissing
	case "DUPLICATE_DATA":
		e.Reason = connector.ReasonDuplicate
		if dup, ok := d["duplicate_record"].(map[string]any); ok {
			e.DuplicateID = str(dup["id"])
		}
	case "INVALID_DATA":
		switch {
		case d["expected_data_type"] != nil:
			e.Reason = connector.ReasonTypeMismatch
		case d["maximum_length"] != nil:
			e.Reason = connector.ReasonTooLong
		case e.Field == "id" || strings.Contains(strings.ToLower(b.Message), "id given seems to be invalid"):
			e.Reason = connector.ReasonNotFound
		default:
			e.Reason = connector.ReasonParamInvalid
		}
	case "INVALID_MODULE", "INVALID_QUERY", "LIMIT_EXCEEDED", "PATTERN_NOT_MATCHED", "DEPENDENT_MISMATCH",
		"AMBIGUITY_DURING_PROCESSING", "INVALID_REQUEST_METHOD", "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
		"PAGINATION_LIMIT_EXCEEDED", "EXPIRED_VALUE", "TOKEN_BOUND_DATA_MISMATCH", "INVALID_HOST", "LIMIT_REACHED":
		e.Reason = connector.ReasonParamInvalid
	case "INVALID_URL_PATTERN":
		e.Reason = connector.ReasonNotFound
	default:
		e.Reason = connector.ReasonOther
	}
}

// deskErrorBody is Desk's error envelope (reference §4.7).
type deskErrorBody struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
	Errors    []struct {
		FieldName    string `json:"fieldName"`
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"errors"`
}

// classifyDesk reads a Desk answer.
func classifyDesk(status int, h http.Header, body []byte, now time.Time) *vendorError {
	if status < 300 || status == http.StatusNotModified {
		return nil
	}
	var b deskErrorBody
	_ = json.Unmarshal(body, &b)
	e := &connector.Error{Class: statusClass(status), Code: b.ErrorCode, Message: b.Message, Status: status, Raw: truncate(body)}
	switch {
	case status == http.StatusTooManyRequests:
		e.Class = connector.RateLimited
		e.RetryAfter = retryAfterHeader(h, now)
		if e.RetryAfter == 0 && strings.TrimSpace(h.Get("X-Rate-Limit-Remaining-v3")) == "0" {
			// Credits are spent and the desk did not say when they return.
			e.RetryAfter = time.Minute
		}
		return &vendorError{err: e, safe: true}
	case status == http.StatusServiceUnavailable:
		e.Class, e.RetryAfter = connector.Transient, retryAfterHeader(h, now)
		return &vendorError{err: e, safe: true}
	case status >= 500:
		e.Class = connector.Transient
		return &vendorError{err: e}
	case status == http.StatusUnauthorized && (b.ErrorCode == "INVALID_OAUTH" || b.ErrorCode == ""):
		return &vendorError{err: e, tokenExpired: true, safe: true}
	case status == http.StatusUnauthorized || b.ErrorCode == "OAUTH_ORG_MISMATCH" || b.ErrorCode == "FORBIDDEN":
		e.Class = connector.Auth
		return &vendorError{err: e}
	}
	e.Class = connector.Permanent
	deskReason(e, b)
	return &vendorError{err: e}
}

// deskReason fills Reason and Field from a Desk error body.
func deskReason(e *connector.Error, b deskErrorBody) {
	e.Reason = connector.ReasonOther
	msg := strings.ToLower(b.Message)
	switch {
	case len(b.Errors) > 0:
		fe := b.Errors[0]
		e.Field = deskFieldName(fe.FieldName)
		em := strings.ToLower(fe.ErrorMessage)
		switch strings.ToLower(fe.ErrorType) {
		case "missing", "mandatory":
			e.Reason = connector.ReasonMandatoryMissing
		case "duplicate":
			e.Reason = connector.ReasonDuplicate
		case "type", "type_mismatch":
			e.Reason = connector.ReasonTypeMismatch
		case "length", "too_long", "maxlength":
			e.Reason = connector.ReasonTooLong
		default:
			switch {
			case strings.Contains(em, "length") || strings.Contains(em, "too long") || strings.Contains(em, "exceed"):
				e.Reason = connector.ReasonTooLong
			case strings.Contains(em, "type") || strings.Contains(em, "number") || strings.Contains(em, "integer"):
				e.Reason = connector.ReasonTypeMismatch
			case strings.Contains(em, "not exist") || strings.Contains(em, "not found"):
				e.Reason = connector.ReasonNotFound
			default:
				e.Reason = connector.ReasonParamInvalid
			}
		}
		if fe.ErrorMessage != "" {
			e.Message = firstNonEmpty(e.Message, "invalid data") + " (" + fe.ErrorMessage + ")"
		}
	case e.Status == http.StatusNotFound:
		e.Reason = connector.ReasonNotFound
	case strings.Contains(msg, "mandatory") || strings.Contains(msg, "missing"):
		e.Reason = connector.ReasonParamMissing
		e.Field = quoted(b.Message)
	case strings.Contains(msg, "invalid") || b.ErrorCode == "UNPROCESSABLE_ENTITY" || b.ErrorCode == "BAD_REQUEST" || b.ErrorCode == "INVALID_DATA":
		e.Reason = connector.ReasonParamInvalid
		e.Field = quoted(b.Message)
	}
}

// deskFieldName turns a JSON pointer ("/contactId", "/cf/cf_model") into a
// field name ("contactId", "cf_model").
func deskFieldName(ptr string) string {
	ptr = strings.Trim(ptr, "/")
	if i := strings.LastIndexByte(ptr, '/'); i >= 0 {
		return ptr[i+1:]
	}
	return ptr
}

// quoted returns the first 'single-quoted' word of a message.
func quoted(msg string) string {
	_, rest, ok := strings.Cut(msg, "'")
	if !ok {
		return ""
	}
	name, _, ok := strings.Cut(rest, "'")
	if !ok {
		return ""
	}
	return name
}

// siqErrorBody is SalesIQ's error answer, sent with HTTP 200.
type siqErrorBody struct {
	Error *struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
		Param   string      `json:"param"`
		JSONKey string      `json:"json_key"`
	} `json:"error"`
}

// classifySalesIQ reads a SalesIQ answer: an "error" object means failure
// whatever the status.
func classifySalesIQ(status int, h http.Header, body []byte, now time.Time) *vendorError {
	var b siqErrorBody
	_ = json.Unmarshal(body, &b)
	if b.Error == nil {
		if status < 300 {
			return nil
		}
		e := &connector.Error{Class: statusClass(status), Status: status, Raw: truncate(body), Reason: connector.ReasonOther}
		if status == http.StatusTooManyRequests {
			e.RetryAfter = retryAfterHeader(h, now)
			return &vendorError{err: e, safe: true}
		}
		return &vendorError{err: e, safe: status == http.StatusServiceUnavailable}
	}
	code := b.Error.Code.String()
	e := &connector.Error{Class: connector.Permanent, Code: code, Message: b.Error.Message, Status: status, Raw: truncate(body),
		Field: firstNonEmpty(b.Error.Param, b.Error.JSONKey)}
	msg := strings.ToLower(b.Error.Message)
	switch code {
	case "1003":
		return &vendorError{err: e, tokenExpired: true, safe: true}
	case "1008":
		e.Class = connector.RateLimited
		e.RetryAfter = retryAfterHeader(h, now)
		return &vendorError{err: e, safe: true}
	case "1001":
		// "Unknown authentication error, Contact SalesIQ Team!" is also the
		// general failure answer: retry, and give up to the engine later.
		e.Class = connector.Transient
		return &vendorError{err: e}
	case "1002", "1007":
		e.Class = connector.Auth
	case "1005":
		e.Reason = connector.ReasonParamInvalid
		e.Field = "screen_name"
	case "1010":
		e.Reason = connector.ReasonParamInvalid
		if strings.Contains(msg, "required") || strings.Contains(msg, "mandatory") {
			e.Reason = connector.ReasonMandatoryMissing
		}
	case "1011":
		e.Reason = connector.ReasonParamInvalid
	case "1012", "2310", "2311":
		e.Reason = connector.ReasonNotFound
	case "1014":
		e.Reason = connector.ReasonDuplicate
	default:
		e.Reason = connector.ReasonOther
	}
	if status == http.StatusTooManyRequests {
		e.Class = connector.RateLimited
		e.RetryAfter = retryAfterHeader(h, now)
		return &vendorError{err: e, safe: true}
	}
	return &vendorError{err: e}
}

// str renders a JSON value as a string: ids arrive as strings or numbers.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}
