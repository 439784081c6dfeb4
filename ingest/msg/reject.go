package msg

import (
	"errors"
	"fmt"

	"github.com/spinecdp/spine/schemas/canon"
)

// Reason is a rejection's code: a short, stable, bounded set, used as the
// DLQ header and as a metric label.
type Reason string

// Rejection reasons.
const (
	ReasonInvalidJSON   Reason = "invalid_json"
	ReasonInvalidUTF8   Reason = "invalid_utf8"
	ReasonNotObject     Reason = "not_object"
	ReasonWrongType     Reason = "wrong_type"
	ReasonMissingField  Reason = "missing_field"
	ReasonBadTimestamp  Reason = "bad_timestamp"
	ReasonUnknownEvent  Reason = "unknown_event"
	ReasonOversize      Reason = "oversize"
	ReasonTooDeep       Reason = "too_deep"
	ReasonNoIdentifier  Reason = "no_identifier"
	ReasonOutOfRange    Reason = "out_of_range"
	ReasonInvalidValue  Reason = "invalid_value"
	ReasonUnknownTopic  Reason = "unknown_topic"
	ReasonErasedSubject Reason = "erased_subject"
)

// Reject says why a message was refused. Message names the field and the
// rule, never a value from the message, so it is safe for logs and headers.
type Reject struct {
	Channel canon.Channel
	Reason  Reason
	Field   string
	Message string
}

func (r *Reject) Error() string {
	if r.Field != "" {
		return fmt.Sprintf("%s: %s: %s", r.Reason, r.Field, r.Message)
	}
	return fmt.Sprintf("%s: %s", r.Reason, r.Message)
}

// Rejectf builds a Reject.
func Rejectf(ch canon.Channel, reason Reason, field, format string, args ...any) *Reject {
	return &Reject{Channel: ch, Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)}
}

// AsReject returns err as a *Reject, wrapping any other error as invalid_value.
func AsReject(ch canon.Channel, err error) *Reject {
	var r *Reject
	if errors.As(err, &r) {
		return r
	}
	var fe *canon.FieldError
	if errors.As(err, &fe) {
		return &Reject{Channel: ch, Reason: ReasonInvalidValue, Field: fe.Field, Message: fe.Rule}
	}
	return &Reject{Channel: ch, Reason: ReasonInvalidValue, Message: err.Error()}
}
