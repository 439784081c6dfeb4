package canon

import (
	"bytes"
	"fmt"

	json "github.com/goccy/go-json"
)

// Decode decodes JSON of these types as the ingest parser builds their
// free-form values: a number in a map or list (traits, properties) stays
// a json.Number, exact, where a float64 would round it or refuse one out
// of its range (1e400). What the engine accepted must read back, or a
// stored profile or event, or a published profile, could not be read
// again. Like json.Unmarshal, it takes one value and nothing after it but
// spaces.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return fmt.Errorf("invalid character %q after the JSON value", rest[0])
	}
	return nil
}
