// Package iot decodes smart-device messages into canonical events.
//
// Mapping (DESIGN section 5):
//   - message_id → message_id, timestamp → time (both required).
//   - event device_paired|device_unpaired|telemetry|alert → the kind of that
//     name; the event name is kept in Name.
//   - device_serial → device_id (observed; required), owner_user_id →
//     user_id and owner_email → email (asserted: the device cloud says who
//     paired the device; the CIAM did not verify it). Owner fields are read
//     on every event that carries them.
//   - device_paired and device_unpaired require an owner (owner_user_id or
//     owner_email): a pairing without an owner means nothing.
//   - device_unpaired: Unlink is the pair device ↔ owner (user_id when
//     usable, else email). The device is then left out of Identifiers, so
//     the resolver does not link again what the event removes; the event
//     belongs to the owner. If either side is refused by normalization the
//     refusal is counted in Dropped, no Unlink is set and every usable
//     identifier stays in Identifiers.
//   - firmware → Props; metrics must be an object of numbers → Props.
//     Every other field (alert codes, severity, ...) → Props.
//
// The decoder is pure and safe for concurrent use.
package iot
