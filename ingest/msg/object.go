package msg

import (
	"encoding/json"
	"math/bits"
	"strings"

	"github.com/spinecdp/spine/schemas/canon"
)

// state is shared by a message's Objects: the channel and the first problem.
type state struct {
	ch  canon.Channel
	err *Reject

	// fields holds the members of a decoder's top-level object in message
	// order, in place of a map, its strings as *string (see parseFields);
	// read has bit i set once member i was read. Only that one Object is
	// flat, so they live here rather than in every Object.
	fields []member
	read   uint64
}

// boxed returns the value v of a member of st.fields as a tree holds it.
func boxed(v any) any {
	if s, ok := v.(*string); ok {
		return *s
	}
	return v
}

// field returns the index in st.fields of the member holding key, or -1.
func (st *state) field(key string) int {
	// The last of repeated keys wins, as in encoding/json.
	for i := len(st.fields) - 1; i >= 0; i-- {
		if st.fields[i].k == key {
			return i
		}
	}
	return -1
}

// shadowed reports whether a later member of st.fields repeats the key of
// member i, which then does not count.
func (st *state) shadowed(i int) bool {
	for _, f := range st.fields[i+1:] {
		if f.k == st.fields[i].k {
			return true
		}
	}
	return false
}

// Object is one JSON object of a message, with typed readers for its
// fields. Readers treat JSON null as absent. A reader that meets a problem
// records a *Reject (the first one of the message wins) and returns the zero
// value, so decoders read on and check Err once at the end.
//
// Object also remembers which keys were read, so Rest can return the others:
// fields outside the contract are kept, never dropped.
type Object struct {
	st *state
	// parent and key place a nested object in the message; the dotted
	// path is built only when a Reject needs it.
	parent *Object
	key    string
	m      map[string]any
	seen   []string // keys of m read so far, each once
	all    bool     // Map handed out every field: none is left for Rest
	flat   bool     // the top-level object, its members in st.fields
}

// Channel is the channel the message came from.
func (o *Object) Channel() canon.Channel { return o.st.ch }

// Err returns the first problem any reader of this message met, or nil.
func (o *Object) Err() error {
	if o.st.err == nil {
		return nil
	}
	return o.st.err
}

// Fail records a problem with field key of o (unless one is recorded
// already). rule says what was wrong and must not quote the value.
func (o *Object) Fail(reason Reason, key, rule string) {
	if o.st.err == nil {
		o.st.err = &Reject{Channel: o.st.ch, Reason: reason, Field: o.Field(key), Message: rule}
	}
}

// Field returns the dotted path of key in the message, for rejects.
func (o *Object) Field(key string) string {
	path := ""
	if o.parent != nil {
		path = o.parent.Field(o.key)
	}
	switch {
	case path == "":
		return key
	case key == "":
		return path
	}
	return path + "." + key
}

// Present reports whether the object was in the message (Obj returns an
// empty Object for an absent or null field).
func (o *Object) Present() bool { return o.m != nil || o.flat }

// Has reports whether key is present and not null. It does not count as a
// read for Rest.
func (o *Object) Has(key string) bool { return o.lookup(key) != nil }

// lookup returns the value of key, nil when absent.
func (o *Object) lookup(key string) any {
	if !o.flat {
		return o.m[key]
	}
	if i := o.st.field(key); i >= 0 {
		return o.st.fields[i].v
	}
	return nil
}

// get returns the value of key, marking it read; null is absent. A string
// of the top-level object comes as *string: readers of strings take both,
// and to the others it is, like a string, of the wrong type.
func (o *Object) get(key string) (any, bool) {
	if o.flat {
		i := o.st.field(key)
		if i < 0 {
			return nil, false
		}
		o.st.read |= 1 << i
		v := o.st.fields[i].v
		return v, v != nil
	}
	if o.m == nil {
		return nil, false
	}
	v, in := o.m[key]
	if in && !o.read(key) {
		if o.seen == nil {
			// seen holds each key of m at most once, so this is its
			// only allocation.
			o.seen = make([]string, 0, len(o.m))
		}
		o.seen = append(o.seen, key)
	}
	return v, v != nil
}

// Str returns the string at key, or "" when absent.
func (o *Object) Str(key string) string {
	v, ok := o.get(key)
	if !ok {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case *string:
		return *v
	}
	o.Fail(ReasonWrongType, key, "must be a string")
	return ""
}

// ReqStr returns the string at key, which must be present and not blank.
func (o *Object) ReqStr(key string) string {
	s := o.Str(key)
	if strings.TrimSpace(s) == "" && o.st.err == nil {
		o.Fail(ReasonMissingField, key, "is required")
	}
	return s
}

// ID returns the id at key: a string, or an integer written as a JSON
// number (many sources send numeric ids). ok is false when absent or null.
func (o *Object) ID(key string) (id string, ok bool) {
	v, ok := o.get(key)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case *string:
		return *v, true
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return v.String(), true
		}
	}
	o.Fail(ReasonWrongType, key, "must be a string or an integer")
	return "", false
}

// ReqID returns the trimmed id at key, which must be present, not blank,
// and at most canon.MaxIDLen bytes long.
func (o *Object) ReqID(key string) string {
	id, ok := o.ID(key)
	id = strings.TrimSpace(id)
	switch {
	case o.st.err != nil:
	case id == "" && ok:
		o.Fail(ReasonMissingField, key, "must not be blank")
	case id == "":
		o.Fail(ReasonMissingField, key, "is required")
	case len(id) > canon.MaxIDLen:
		o.Fail(ReasonInvalidValue, key, "must be at most 512 bytes")
	}
	return id
}

// Bool returns the boolean at key; ok is false when absent.
func (o *Object) Bool(key string) (b, ok bool) {
	v, ok := o.get(key)
	if !ok {
		return false, false
	}
	b, ok = v.(bool)
	if !ok {
		o.Fail(ReasonWrongType, key, "must be a boolean")
	}
	return b, ok
}

// Int returns the integer at key; ok is false when absent. A number with a
// fraction or exponent, or out of int64 range, is a wrong_type.
func (o *Object) Int(key string) (n int64, ok bool) {
	v, ok := o.get(key)
	if !ok {
		return 0, false
	}
	num, isNum := v.(json.Number)
	if isNum {
		if n, err := num.Int64(); err == nil {
			return n, true
		}
	}
	o.Fail(ReasonWrongType, key, "must be an integer")
	return 0, false
}

// Obj returns the object at key. When absent it returns an empty Object
// whose readers find nothing, so nested reads chain without checks.
func (o *Object) Obj(key string) *Object {
	child := &Object{st: o.st, parent: o, key: key}
	v, ok := o.get(key)
	if !ok {
		return child
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		o.Fail(ReasonWrongType, key, "must be an object")
		return child
	}
	child.m = m
	return child
}

// Arr returns the array at key, or nil when absent.
func (o *Object) Arr(key string) []any {
	v, ok := o.get(key)
	if !ok {
		return nil
	}
	a, isArr := v.([]any)
	if !isArr {
		o.Fail(ReasonWrongType, key, "must be an array")
	}
	return a
}

// Map returns the object's fields as decoded (nil when absent) and marks
// them all read. The map belongs to the message; decoders may keep it.
func (o *Object) Map() map[string]any {
	o.all = true
	if o.flat {
		o.m = make(map[string]any, len(o.st.fields))
		for _, f := range o.st.fields {
			o.m[f.k] = boxed(f.v) // a repeated key: the last wins
		}
		o.flat = false
	}
	return o.m
}

// Rest returns a new map of the fields no reader has read, or nil if none.
func (o *Object) Rest() map[string]any {
	return o.keepRest(nil)
}

// keepRest is Keep(props, o.Rest()) without building the map of the rest
// first: it returns props with the fields no reader has read added, or a
// new map of them if props is nil (and nil if there are none).
func (o *Object) keepRest(props map[string]any) map[string]any {
	n := o.unread()
	if n == 0 {
		return props // every field was read: skip walking the map
	}
	keep := func(k string, v any) {
		if props == nil {
			// The keys are distinct, so KeepField renames none of them.
			props = make(map[string]any, n)
		}
		props = KeepField(props, k, v)
	}
	if o.flat {
		for i, f := range o.st.fields {
			if o.st.read&(1<<i) == 0 && !o.st.shadowed(i) {
				keep(f.k, boxed(f.v))
			}
		}
		return props
	}
	for k, v := range o.m {
		if !o.read(k) {
			keep(k, v)
		}
	}
	return props
}

// unread is at least the number of fields no reader has read, and 0 only
// when there are none.
func (o *Object) unread() int {
	switch {
	case o.all:
		return 0
	case o.flat:
		return len(o.st.fields) - bits.OnesCount64(o.st.read)
	}
	return len(o.m) - len(o.seen)
}

func (o *Object) read(k string) bool {
	for _, s := range o.seen {
		if s == k {
			return true
		}
	}
	return false
}

// Enum reads the required string at key and looks it up in table. A value
// not in table is refused with reason (unknown_event for event names,
// invalid_value for other enumerations).
func Enum[V any](o *Object, key string, table map[string]V, reason Reason) (string, V) {
	s := o.ReqStr(key)
	v, ok := table[s]
	if !ok && o.st.err == nil {
		o.Fail(reason, key, "is not one of the values the contract lists")
	}
	return s, v
}

// Elem returns the object at element i of arr, an array read from field key
// of o. Rejects name it key.field (no index, so the set of field names stays
// bounded).
func (o *Object) Elem(key string, arr []any, i int) *Object {
	child := &Object{st: o.st, parent: o, key: key}
	m, ok := arr[i].(map[string]any)
	if !ok {
		o.Fail(ReasonWrongType, key, "elements must be objects")
		return child
	}
	child.m = m
	return child
}

// IsObj reports whether key holds an object, for fields that may be an id
// or an object. It does not count as a read for Rest.
func (o *Object) IsObj(key string) bool {
	_, ok := o.lookup(key).(map[string]any)
	return ok
}
