// Package ciam decodes messages of the customer identity and access
// management system, the authoritative identity source, into canonical
// events.
//
// Mapping (DESIGN section 5):
//   - event_id → message_id, timestamp → time, event (all required).
//   - event registered|login|account_linked|account_unlinked|
//     profile_updated|consent_updated → the kind of that name;
//     email_verified and phone_verified → verified; erasure_requested →
//     erasure. Name is the event.
//   - Identifiers: user_id → user_id (verified: the CIAM owns it); email and
//     phone → verified when email_verified / phone_verified is true (or the
//     event is email_verified / phone_verified), else asserted;
//     anonymous_id → anonymous_id and device_id → device_id (observed).
//   - email_verified and phone_verified events require the email or phone
//     they verify; a false email_verified / phone_verified flag on them
//     contradicts the event and is an invalid_value.
//   - account_linked / account_unlinked require user_id and linked
//     {type, value}, where type is a canonical identifier type. Linked:
//     Link is the pair user_id ↔ linked and the linked identifier joins
//     Identifiers as verified. Unlinked: Unlink is that pair and the linked
//     identifier stays out of Identifiers, so the resolver does not link
//     again what the event removes. When either side is refused by
//     normalization the refusal is counted in Dropped and no pair is set.
//   - erasure_requested requires user_id or email, and carries only the
//     person's own identifiers (user_id, email, phone): anonymous_id and
//     device_id are counted in Dropped under "erasure_scope" and left out,
//     because a shared device must never erase another customer.
//   - traits → Traits; consent {purpose: bool} → Consent, where purpose is
//     one of canon.Purposes (others are invalid_value; consent_updated
//     requires at least one); organization, a string or integer id or an
//     object with an id, → GroupID (an object's fields → GroupTraits).
//     Every other field → Props.
//
// The decoder is pure and safe for concurrent use.
package ciam
