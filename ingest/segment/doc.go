// Package segment decodes messages in the Segment tracking spec, the
// contract of the web and mobile channels, into canonical events.
//
// Mapping (DESIGN section 5):
//   - type identify|track|page|screen|alias|group → the kind of that name;
//     a track whose event is "Order Completed" (case and surrounding spaces
//     ignored) → order, with Amount from properties.revenue, or
//     properties.total when revenue is absent, in properties.currency, which
//     defaults to USD when absent, as the Segment spec says.
//   - messageId → message_id (required), timestamp → time (required,
//     RFC 3339); Name is the track's event (required) or the page or
//     screen name.
//   - Identifiers: anonymousId → anonymous_id and context.device.id →
//     device_id (observed); userId → user_id, traits.email,
//     context.traits.email → email, traits.phone, context.traits.phone →
//     phone (asserted: the site or app says so, the CIAM did not verify it).
//   - alias: previousId → anonymous_id and userId (both required); Link is
//     the pair previousId → userId when both are usable.
//   - group: groupId → GroupID (required), traits → GroupTraits; the traits
//     of a group call describe the account, so no identifier is read from
//     them.
//   - Traits: context.traits, overlaid with traits (on every call but group);
//     their email and phone are rewritten to the normalized form, or
//     removed when refused (counted in Dropped), see msg.IDs.Clean.
//     Props: properties, then every other top-level field (context,
//     sentAt, integrations, ...) under its own name; see msg.Keep.
//
// The decoder is pure and safe for concurrent use.
package segment
