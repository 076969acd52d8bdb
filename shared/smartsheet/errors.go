package smartsheet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Smartsheet error codes the client and its callers act on.
const (
	CodeTokenMissing        = 1001
	CodeTokenInvalid        = 1002
	CodeTokenExpired        = 1003
	CodeAccessDenied        = 1004
	CodeNotFound            = 1006
	CodeInvalidJSON         = 1008
	CodeMissingAttribute    = 1012
	CodeInvalidParameter    = 1018
	CodeInvalidColumnID     = 1036
	CodeStrictTypeViolation = 1042
	CodeInvalidRowLocation  = 1062
	CodeMixedRowLocations   = 1123
	CodeMaintenance         = 4001
	CodeServerTimeout       = 4002
	CodeRateLimited         = 4003
	CodeUnexpected          = 4004
)

// APIError is a non-2xx answer of the API. Match it with errors.As; the
// helpers IsNotFound, IsUnauthorized, ... classify it.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// ErrorCode is Smartsheet's errorCode (0 when the body was not an error body).
	ErrorCode int
	// Message is Smartsheet's message, or the start of a non-JSON body.
	Message string
	// RefID is Smartsheet's reference for support requests.
	RefID string
	// Detail is the optional detail object (e.g. {"index":0,"rowId":10}).
	Detail json.RawMessage
	// Endpoint names the call, e.g. "POST /sheets/{sheetId}/rows".
	Endpoint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smartsheet: %s: HTTP %d", e.Endpoint, e.StatusCode)
	if e.ErrorCode != 0 {
		fmt.Fprintf(&b, " errorCode %d", e.ErrorCode)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RefID != "" {
		fmt.Fprintf(&b, " (refId %s)", e.RefID)
	}
	return b.String()
}

// Retryable reports whether the client would retry this error.
func (e *APIError) Retryable() bool { return classify(e) != retryNone }

func readAPIError(resp *http.Response, endpoint string) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Endpoint: endpoint}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	var body ErrorBody
	if json.Unmarshal(data, &body) == nil && (body.ErrorCode != 0 || body.Message != "") {
		e.ErrorCode, e.Message, e.RefID, e.Detail = body.ErrorCode, body.Message, body.RefID, body.Detail
		return e
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}

// TransportError is a failure to get an HTTP answer (connection, TLS,
// timeout, truncated body). It is retried.
type TransportError struct {
	Endpoint string
	Err      error
}

func (e *TransportError) Error() string { return fmt.Sprintf("smartsheet: %s: %v", e.Endpoint, e.Err) }

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// RetryError says the client stopped retrying a call: the retry budget ran
// out, or the context was cancelled or would expire before the next attempt.
// It wraps the last error (errors.As finds the *APIError) and the context
// error, if any.
type RetryError struct {
	Endpoint string
	Attempts int
	Elapsed  time.Duration
	Budget   time.Duration
	Reason   string
	Last     error
	Cause    error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("smartsheet: %s: gave up after %d attempt(s) over %s (%s; retry budget %s): last error: %v",
		e.Endpoint, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Reason, e.Budget, e.Last)
}

// Unwrap returns the last error and the context error.
func (e *RetryError) Unwrap() []error {
	errs := []error{e.Last}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// AmbiguousError says a write sent with NoReplay (AddRowsOptions.NoReplay)
// failed in a way that does not tell whether Smartsheet applied it: a 5xx
// that may come after the change was saved (errorCode 4002, 4004 or none), a
// timeout, a connection lost after the request went out, or a success answer
// that could not be read. The client did not send it again, because a second
// POST of rows that were in fact added adds them twice. The caller must find
// out (e.g. read the sheet and look for the rows) before writing again.
//
// A bulk write wraps it in a *BatchError; use IsAmbiguous or errors.As.
type AmbiguousError struct {
	// Endpoint names the call, e.g. "POST /sheets/{sheetId}/rows".
	Endpoint string
	// Err is the failure of the attempt (*APIError, *TransportError, or a
	// decode error of a 2xx answer).
	Err error
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("smartsheet: %s: outcome unknown, not replayed (the write may have been applied): %v", e.Endpoint, e.Err)
}

// Unwrap returns the failure of the attempt.
func (e *AmbiguousError) Unwrap() error { return e.Err }

// IsAmbiguous reports whether err (or an error it wraps) is an
// *AmbiguousError: a NoReplay write that may or may not have been applied.
func IsAmbiguous(err error) bool {
	var a *AmbiguousError
	return errors.As(err, &a)
}

// decodeError is a 2xx answer whose body could not be decoded. For a write
// it means the change was applied but its result (new ids, version) is lost.
type decodeError struct {
	Endpoint string
	Err      error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("smartsheet: %s: decode response: %v", e.Endpoint, e.Err)
}

func (e *decodeError) Unwrap() error { return e.Err }

// BatchError reports a failed request of a split bulk write: rows
// [Offset, Offset+Count) of the caller's slice failed with Err, and rows after
// them were not sent.
type BatchError struct {
	Offset, Count int
	Err           error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("rows %d-%d: %v", e.Offset, e.Offset+e.Count-1, e.Err)
}

// Unwrap returns the cause.
func (e *BatchError) Unwrap() error { return e.Err }

// ErrSheetChanged is returned by ForEachSheetPage when the sheet's version
// changed between pages (rows may have shifted); start over.
var ErrSheetChanged = errors.New("smartsheet: sheet changed while paging")

// ErrorCode returns the Smartsheet errorCode of err, or 0.
func ErrorCode(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.ErrorCode
	}
	return 0
}

func hasCode(err error, status int, codes ...int) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.ErrorCode == c {
			return true
		}
	}
	return e.ErrorCode == 0 && e.StatusCode == status
}

// IsNotFound reports a missing object (errorCode 1006 or HTTP 404).
func IsNotFound(err error) bool { return hasCode(err, http.StatusNotFound, CodeNotFound) }

// IsUnauthorized reports a missing, invalid or expired token (1001-1003 or HTTP 401).
func IsUnauthorized(err error) bool {
	return hasCode(err, http.StatusUnauthorized, CodeTokenMissing, CodeTokenInvalid, CodeTokenExpired)
}

// IsForbidden reports missing permissions (1004 or HTTP 403).
func IsForbidden(err error) bool { return hasCode(err, http.StatusForbidden, CodeAccessDenied) }

// IsRateLimited reports a rate-limit answer (4003 or HTTP 429).
func IsRateLimited(err error) bool { return hasCode(err, http.StatusTooManyRequests, CodeRateLimited) }

// IsBadRequest reports a request Smartsheet rejected as invalid (any other 4xx
// except auth, permission, not-found and rate limit); retrying cannot help.
func IsBadRequest(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500 &&
		!IsNotFound(err) && !IsUnauthorized(err) && !IsForbidden(err) && !IsRateLimited(err)
}
