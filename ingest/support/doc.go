// Package support decodes help-desk ticket events into canonical events.
//
// Mapping (DESIGN section 5):
//   - event_id → message_id, timestamp → time, ticket_id → Props (all
//     required: every support event belongs to a ticket).
//   - event ticket_opened|ticket_closed → the kind of that name;
//     refund_issued → refund, with Amount from refund_amount and currency
//     (both required: a help desk has no default currency);
//     csat_submitted → csat, with csat an integer 1..5 (required; other
//     integers are out_of_range). Name is the event.
//   - Identifiers: crm_contact_id → crm_id, email → email, phone → phone
//     (asserted: given to an agent).
//   - medium, when present, must be email, chat or voice → Props. Every
//     other field (subject, agent, ...) → Props.
//
// The decoder is pure and safe for concurrent use.
package support
