// Package gen is Spine's synthetic traffic generator: a deterministic stream
// of raw channel messages (Segment web and mobile, IoT, POS, support, CIAM,
// exactly as DESIGN section 5 specifies them) for many simulated people, with
// the ground truth Spine should arrive at.
//
// Each person follows a journey from anonymous visitor to customer: web
// browsing under a cookie, perhaps on several devices, a sign-up (Segment
// identify plus a CIAM registration), mobile logins, store purchases with a
// loyalty card, online orders, support tickets with refunds and CSAT, smart
// devices, consent changes. Some stay anonymous, some only ever give an email.
// With Config.Hard the stream also carries what real pipelines deliver: email
// and phone formatting variants, junk identifier values, family tablets shared
// by two customers, duplicate deliveries, late events and malformed messages.
//
// The generator is a pure function of its Config: the same seed gives a
// byte-identical stream and truth. Every person's journey is planned from a
// random source derived from (Seed, person), and people start at fixed,
// evenly spaced times, so that
//   - memory stays bounded: only the people whose journeys overlap the current
//     stream time (at most Config.Window of them) are held, whatever Persons is;
//   - the truth can be recomputed person by person (Truth, WriteTruth) without
//     keeping the stream, and without depending on how far it was consumed.
//
// Messages come out in send-time order across all active people, so one
// person's events interleave with thousands of others' as they would in a
// real stream; Produce writes them to Kafka.
package gen
