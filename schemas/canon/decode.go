package canon

import (
	json "github.com/goccy/go-json"
)

// Decode decodes JSON of these types as the ingest parser builds their
// free-form values: a number in a map or list (traits, properties) stays
// a json.Number, exact, where a float64 would round it or refuse one out
// of its range (1e400). What the engine accepted must read back, or a
// stored profile, event or account, or a published profile, could not be
// read again. Like json.Unmarshal, it takes one value and nothing after
// it but spaces.
func Decode(b []byte, v any) error { return json.UnmarshalWithOption(b, v, useNumber) }

// useNumber sets the flag of the library's Decoder.UseNumber, which no
// option of Unmarshal names (its internal decoder.UseNumberOption, the
// fourth flag); Unmarshal takes it as the Decoder does, without the
// Decoder's copy of the input. TestDecode fails if a version of the
// library moves it.
func useNumber(o *json.DecodeOption) { o.Flags |= 1 << 3 }
