package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	gojson "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas/canon"
)

// errorBody is the shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// httpError is a client error whose message is safe to show: handlers build
// them from fixed text and field names, never from identifier values.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, msg string) error { return &httpError{status: status, msg: msg} }

// statusNoCapability (501) answers endpoints whose capability the engine
// behind the API does not offer.
const statusNoCapability = 501

var (
	errNotFound     = errStatus(http.StatusNotFound, "not found")
	errNoCapability = errStatus(statusNoCapability, "this engine does not support this endpoint")
)

// bufPool recycles response buffers: encoding dominates a lookup's cost.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps the occasional large export from pinning memory.
const maxPooledBuf = 64 << 10

func getBuf() *bytes.Buffer {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuf {
		buf.Reset()
		bufPool.Put(buf)
	}
}

// writeJSON encodes v before writing anything, so that an encoding failure
// can still become a clean 500.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	// goccy/go-json writes the same JSON as encoding/json, in about a
	// third of the time; encoding is most of a lookup's cost.
	if err := gojson.NewEncoder(buf).Encode(v); err != nil {
		s.log.Error("api: encode response", "err", err)
		buf.Reset()
		buf.WriteString(`{"error":"internal error"}` + "\n")
		status = http.StatusInternalServerError
	}
	writeRaw(w, status, buf.Bytes())
}

// writeEncoded answers 200 with JSON encoded elsewhere, which may be
// shared: it is copied, with the newline every answer ends in.
func writeEncoded(w http.ResponseWriter, b []byte) {
	buf := getBuf()
	defer putBuf(buf)
	buf.Write(b)
	buf.WriteByte('\n')
	writeRaw(w, http.StatusOK, buf.Bytes())
}

// writeRaw writes b, which ends in a newline, as the JSON answer.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	// A failed write means the client went away; there is no one to tell.
	_, _ = w.Write(b)
}

// writeError answers err with the fitting status. Only messages known to be
// safe reach the client: engine errors other than the canon sentinels are
// logged and answered with a bare 500.
func (s *Server) writeError(w http.ResponseWriter, c *call, err error) {
	status, msg := s.classify(c, err)
	if errors.Is(err, canon.ErrUnavailable) {
		// A replica catching up is back within seconds.
		w.Header().Set("Retry-After", strconv.Itoa(retryUnavailable))
	}
	s.writeJSON(w, status, errorBody{Error: msg})
}

// retryUnavailable is the Retry-After, in seconds, of a 503 for an answer
// that cannot be given now (canon.ErrUnavailable).
const retryUnavailable = 1

func (s *Server) classify(c *call, err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.Is(err, canon.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, canon.ErrInvalid):
		return http.StatusBadRequest, fieldMessage(err, "invalid request")
	case errors.Is(err, canon.ErrConflict):
		return http.StatusConflict, fieldMessage(err, "conflict")
	case errors.Is(err, canon.ErrUnavailable):
		return http.StatusServiceUnavailable, "not ready: try again later"
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("api: request timed out", "route", c.route, "token", c.who)
		return http.StatusServiceUnavailable, "request timed out"
	case errors.Is(err, context.Canceled):
		// The client went away; the answer is for the metrics only.
		return http.StatusServiceUnavailable, "request canceled"
	}
	// Engine errors never carry identifier values (STYLE §2.4), so err is
	// safe to log; it is not safe to show, as it may describe internals.
	s.log.Error("api: request failed", "route", c.route, "token", c.who, "err", err)
	return http.StatusInternalServerError, "internal error"
}

// fieldMessage shows the rule of a canon.FieldError in err's chain, which
// by its contract never carries the field's value, and def otherwise.
func fieldMessage(err error, def string) string {
	var fe *canon.FieldError
	if errors.As(err, &fe) {
		return def + ": " + fe.Error()
	}
	return def
}

// decodeBody reads one JSON value of at most max bytes into v, rejecting
// unknown fields and trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, max)
	}
	// A second value, or garbage after the first, is a malformed body.
	switch err := dec.Decode(&json.RawMessage{}); {
	case err == io.EOF:
		return nil
	case err != nil:
		return bodyError(err, max)
	}
	return errStatus(http.StatusBadRequest, "request body must hold exactly one JSON value")
}

func bodyError(err error, max int64) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return errStatus(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", max))
	case errors.Is(err, io.EOF):
		return errStatus(http.StatusBadRequest, "request body is empty")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return errStatus(http.StatusBadRequest, "request body is not valid JSON")
	case errors.As(err, &te):
		// Field is a path of our own struct's JSON names, not client data.
		if te.Field == "" {
			return errStatus(http.StatusBadRequest, "request body must be a JSON object")
		}
		return errStatus(http.StatusBadRequest, "wrong JSON type for field "+strconv.Quote(te.Field))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// The name is the client's own key, quoted by encoding/json; it
		// is shown (bounded) because it is what the client must fix.
		if len(name) > 66 {
			name = name[:64] + `…"`
		}
		return errStatus(http.StatusBadRequest, "unknown field "+name)
	}
	return errStatus(http.StatusBadRequest, "request body is not valid JSON")
}

// isJSONBool reports whether raw is exactly the JSON literal true or false.
// json.Unmarshal into a bool accepts null silently, which would turn
// {"sms": null} into a withdrawal.
func isJSONBool(raw json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
