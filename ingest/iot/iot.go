package iot

import (
	"encoding/json"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var kinds = map[string]canon.Kind{
	"device_paired":   canon.KindDevicePaired,
	"device_unpaired": canon.KindDeviceUnpaired,
	"telemetry":       canon.KindTelemetry,
	"alert":           canon.KindAlert,
}

// New returns the iot decoder, which normalizes identifiers with n and
// reads messages within lim.
func New(n *normalize.Normalizer, lim msg.Limits) func([]byte) (canon.Event, error) {
	return msg.NewDecoder(msg.Envelope{
		Channel:    canon.IoT,
		IDField:    "message_id",
		EventField: "event",
		TimeField:  "timestamp",
		Kinds:      kinds,
		Fill:       fill,
	}, n, lim)
}

// fill reads the device fields of o into ev.
func fill(o *msg.Object, ev *canon.Event, ids *msg.IDs) {
	kind := ev.Kind
	if !o.Has("device_serial") {
		o.Fail(msg.ReasonMissingField, "device_serial", "is required")
	}
	device, hasDevice := ids.Take(o, "device_serial", canon.DeviceID)
	user, hasUser := ids.Read(o, "owner_user_id", canon.UserID, canon.Asserted)
	email, hasEmail := ids.Read(o, "owner_email", canon.Email, canon.Asserted)
	if (kind == canon.KindDevicePaired || kind == canon.KindDeviceUnpaired) &&
		!o.Has("owner_user_id") && !o.Has("owner_email") {
		o.Fail(msg.ReasonMissingField, "owner_user_id", "is required (or owner_email) to pair or unpair")
	}
	owner, hasOwner := user, hasUser
	if !hasOwner {
		owner, hasOwner = email, hasEmail
	}
	switch {
	case kind == canon.KindDeviceUnpaired && hasDevice && hasOwner:
		ev.Unlink = &canon.Pair{A: device, B: owner}
	case hasDevice:
		ids.Add(device, canon.Observed)
	}
	ev.Props = map[string]any{}
	if fw := o.Str("firmware"); fw != "" {
		ev.Props["firmware"] = fw
	}
	if m := metrics(o.Obj("metrics")); m != nil {
		ev.Props["metrics"] = m
	}
}

// metrics returns the metrics object, checking that every value is a
// number (or null, which means no reading).
func metrics(o *msg.Object) map[string]any {
	m := o.Map()
	for _, v := range m {
		if _, ok := v.(json.Number); !ok && v != nil {
			o.Fail(msg.ReasonWrongType, "", "values must be numbers")
			return nil
		}
	}
	return m
}
