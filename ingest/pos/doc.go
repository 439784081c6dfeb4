// Package pos decodes point-of-sale transactions into canonical events.
//
// Mapping (DESIGN section 5):
//   - transaction_id → message_id, timestamp → time (both required).
//   - type purchase → order, return → return (required); Name is the type.
//   - total → Amount (required, a JSON number or numeric string, read
//     exactly; negative totals are out_of_range: a return carries its value
//     as a positive total). currency is required: unlike the Segment spec,
//     a till has no default currency, and guessing one would add amounts in
//     different currencies together.
//   - Identifiers: loyalty_id → loyalty_id, email → email, phone → phone
//     (asserted: given to a cashier), card_fingerprint → card_fp (observed).
//   - store_id → Props (a string or integer id); items must be an array of
//     objects whose sku is a string, qty an integer and unit_price a
//     non-negative decimal when present → Props, as sent. Every other field
//     → Props.
//
// The decoder is pure and safe for concurrent use.
package pos
