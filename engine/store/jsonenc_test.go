package store

import (
	"bytes"
	stdjson "encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

var (
	jsonencSeed = flag.Uint64("seed", 0, "TestAppendProperty: replay this seed only (0: seeds 1 to -jsonenc.runs)")
	jsonencRuns = flag.Int("jsonenc.runs", 300, "TestAppendProperty: how many seeds to try")
)

// sameAsMarshal reports how got differs from want, marshal's encoding of
// the same value: decoded with encoding/json (numbers as written) they
// must be equal, and with exact, when no map of the value has more than
// one entry (so member order is fixed), byte for byte.
func sameAsMarshal(got, want []byte, exact bool) error {
	g, err := decodeNumbers(got)
	if err != nil {
		return fmt.Errorf("not JSON: %v: %s", err, got)
	}
	w, err := decodeNumbers(want)
	if err != nil {
		return fmt.Errorf("marshal's is not JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("decodes differently:\n got %s\nwant %s", got, want)
	}
	if exact && !bytes.Equal(got, want) {
		return fmt.Errorf("bytes differ:\n got %s\nwant %s", got, want)
	}
	return nil
}

func decodeNumbers(b []byte) (any, error) {
	d := stdjson.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// The outcomes of checkEncoder, which TestAppendProperty counts.
const (
	outExact   = iota // written, byte for byte as marshal
	outDecoded        // written, equal to marshal's once decoded
	outRefused        // refused, as marshal refuses it
	outLeft           // left to marshal, which writes it
	numOutcomes
)

// checkEncoder compares enc's encoding of v with marshal's. marshal
// failing must make enc fail, and enc must fail only where marshal does
// (strict) or for a value it may leave to marshal (not strict).
func checkEncoder[T any](v T, enc func([]byte, T) ([]byte, bool), exact, strict bool) (int, error) {
	want, err := marshal(v)
	prefix := []byte("prefix")
	got, ok := enc(bytes.Clone(prefix), v)
	switch {
	case err != nil && ok:
		return 0, fmt.Errorf("marshal fails (%v), the encoder writes %s", err, got)
	case err != nil:
		return outRefused, nil
	case !ok && strict:
		return 0, fmt.Errorf("the encoder fails, marshal writes %s", want)
	case !ok:
		return outLeft, nil
	case !bytes.HasPrefix(got, prefix):
		return 0, fmt.Errorf("the encoder overwrote dst: %s", got)
	}
	if exact {
		return outExact, sameAsMarshal(got[len(prefix):], want, true)
	}
	return outDecoded, sameAsMarshal(got[len(prefix):], want, false)
}

// gen makes random values with awkward strings, nil and empty slices and
// maps, times marshal writes and some it refuses. big records whether it
// made a map of more than one entry, whose member order is free.
type gen struct {
	r     *rand.Rand
	big   bool
	bad   bool // allow values marshal refuses
	small bool // maps of at most one entry, so most values compare byte for byte
}

var genPieces = []string{"", "a", "plain text", `"`, `\`, "\x00", "\x1f", "\b\f\n\r\t", "<", ">", "&", "\u2028", "\u2029",
	"\xff", "\xc3", "\xed\xa0\x80", "é", "✓", "𝄞", "\ufffd", "\x7f", "</script>", "\u00a0", "日本"}

func (g *gen) str() string {
	var sb strings.Builder
	for range g.r.IntN(4) {
		sb.WriteString(genPieces[g.r.IntN(len(genPieces))])
	}
	return sb.String()
}

// size is how many entries a map or slice gets: nil (-1), empty, or some.
func (g *gen) size() int { return g.r.IntN(6) - 1 }

func (g *gen) time() time.Time {
	if g.bad && g.r.IntN(60) == 0 {
		return []time.Time{
			time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
		}[g.r.IntN(3)]
	}
	switch g.r.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(g.r.IntN(10000), time.Month(1+g.r.IntN(12)), 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), 0, time.UTC)
	case 2:
		zone := time.FixedZone("z", (g.r.IntN(47)-23)*3600+g.r.IntN(4)*900+g.r.IntN(2)*7)
		return time.Date(1970+g.r.IntN(100), 1, 1, 0, 0, 0, g.r.IntN(1e9), time.UTC).Add(time.Duration(g.r.Int64N(1e15))).In(zone)
	case 3:
		return time.Unix(g.r.Int64N(4e9), int64(g.r.IntN(1000))*1000).UTC()
	}
	return time.Now() // with a monotonic reading
}

func (g *gen) float() float64 {
	if g.bad && g.r.IntN(60) == 0 {
		return []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[g.r.IntN(3)]
	}
	switch g.r.IntN(6) {
	case 0:
		return []float64{0, math.Copysign(0, -1), 1e21, 1e-6, 1e-7, 5e-324, math.MaxFloat64, 1e20, 123456789.125}[g.r.IntN(9)]
	case 1:
		return float64(g.r.IntN(1000)) / 100
	case 2:
		return math.Float64frombits(g.r.Uint64()&^(0x7ff<<52) | uint64(1+g.r.IntN(0x7fe))<<52) // any finite
	}
	return (g.r.Float64() - 0.5) * math.Pow(10, float64(g.r.IntN(60)-30))
}

func (g *gen) number() stdjson.Number {
	valid := []string{"", "0", "-0", "7", "-12.5", "1e21", "1E+2", "0.000001", "123456789012345678901234567890", "1.0e-0"}
	if g.bad && g.r.IntN(30) == 0 {
		return stdjson.Number([]string{"01", "+1", "1.", ".5", "1e", "NaN", " 1", "0x10"}[g.r.IntN(8)])
	}
	return stdjson.Number(valid[g.r.IntN(len(valid))])
}

// anyValue is a value as JSON decoders build it, nested at most depth
// more levels; with g.bad, now and then one appendAny leaves to marshal.
func (g *gen) anyValue(depth int) any {
	k := g.r.IntN(12)
	if depth <= 0 && k >= 9 {
		k = g.r.IntN(9)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return g.r.IntN(2) == 0
	case 2:
		return g.str()
	case 3:
		if g.r.IntN(3) == 0 {
			return (*string)(nil)
		}
		s := g.str()
		return &s
	case 4:
		return g.number()
	case 5:
		return g.float()
	case 6:
		return g.r.IntN(2000) - 1000
	case 7:
		return g.r.Int64() - g.r.Int64()
	case 8:
		if g.bad && g.r.IntN(4) == 0 {
			return []any{uint8(1), []string{"x"}, struct{ A int }{1}, float32(1.5)}[g.r.IntN(4)]
		}
		return g.str()
	case 9:
		return g.anyMap(depth - 1)
	case 10:
		n := g.size()
		if n < 0 {
			return []any(nil)
		}
		s := make([]any, n)
		for i := range s {
			s[i] = g.anyValue(depth - 1)
		}
		return s
	}
	return genMap(g, g.str)
}

func (g *gen) anyMap(depth int) map[string]any {
	return genMap(g, func() any { return g.anyValue(depth) })
}

// genMap makes a nil, empty or filled map with random keys. No two keys
// are the same once invalid UTF-8 is replaced: their JSON would hold a
// repeated member, which decodes to the one written last, and that
// depends on the order marshal leaves free.
func genMap[V any](g *gen, value func() V) map[string]V {
	n := g.size()
	if n < 0 {
		return nil
	}
	if g.small {
		n = min(n, 1)
	}
	m := make(map[string]V, n)
	seen := map[string]bool{}
	for range n {
		k := g.str()
		if valid := string([]rune(k)); !seen[valid] {
			seen[valid] = true
			m[k] = value()
		}
	}
	if len(m) > 1 {
		g.big = true
	}
	return m
}

func genSlice[V any](g *gen, value func() V) []V {
	n := g.size()
	if n < 0 {
		return nil
	}
	s := make([]V, n)
	for i := range s {
		s[i] = value()
	}
	return s
}

func (g *gen) amounts() canon.Amounts {
	return genMap(g, func() int64 {
		if g.bad && g.r.IntN(40) == 0 {
			return math.MinInt64
		}
		return []int64{0, 1, -1, 1_000_000, 12_500_000, -3_000_001, 100, math.MaxInt64, math.MinInt64 + 1, g.r.Int64N(1e15) - 5e14}[g.r.IntN(10)]
	})
}

func (g *gen) profile() *canon.Profile {
	p := &canon.Profile{ID: g.str(), Level: canon.Level(g.str()), Version: g.r.Uint64() >> g.r.IntN(64), UpdatedAt: g.time()}
	p.Identifiers = genSlice(g, func() canon.ProfileIdentifier {
		return canon.ProfileIdentifier{Type: canon.IDType(g.str()), Value: g.str(), Trust: canon.Trust(g.r.IntN(5)), FirstSeen: g.time()}
	})
	p.Traits = g.anyMap(3)
	if g.r.IntN(3) == 0 { // with g.bad, a profile whose traits go to marshal
		p.Traits = genMap(g, func() any { return g.anyValue(2) })
	}
	p.TraitSources = genMap(g, func() canon.TraitSource {
		return canon.TraitSource{Time: g.time(), Channel: canon.Channel(g.str()), Verified: g.r.IntN(2) == 0}
	})
	p.Consent = genMap(g, func() canon.ConsentState {
		return canon.ConsentState{Value: g.r.IntN(2) == 0, Time: g.time(), Source: g.str()}
	})
	p.Groups = genSlice(g, g.str)
	p.MergedFrom = genSlice(g, g.str)
	c := &p.Computed
	c.FirstSeen, c.LastSeen = g.time(), g.time()
	c.Channels = genSlice(g, func() canon.Channel { return canon.Channel(g.str()) })
	c.EventsByChannel = map[canon.Channel]int64(nil)
	if m := genMap(g, g.r.Int64); m != nil {
		c.EventsByChannel = make(map[canon.Channel]int64, len(m))
		for k, v := range m {
			c.EventsByChannel[canon.Channel(k)] = v
		}
	}
	c.OrderCount, c.RefundCount, c.TicketsOpened = g.r.Int64(), -g.r.Int64N(10), g.r.Int64N(10)
	c.TotalSpend, c.ReturnTotal, c.RefundTotal = g.amounts(), g.amounts(), g.amounts()
	c.AvgCSAT, c.CSATSum, c.CSATCount, c.Devices = g.float(), g.r.Int64N(100), g.r.Int64N(20), g.r.IntN(5)-1
	c.LastChannel, c.LifecycleStage = canon.Channel(g.str()), g.str()
	c.Lifecycle = genMap(g, g.time)
	return p
}

func (g *gen) internal() *profile.Internal {
	in := &profile.Internal{Comp: g.r.Uint64(), Created: g.r.Uint64N(1000), Founder: g.str()}
	in.FirstOrders = genSlice(g, g.time)
	in.Conflicts = genSlice(g, func() canon.LogRecord {
		r := canon.LogRecord{Type: canon.LogType(g.str()), ProfileID: g.str(), Others: genSlice(g, g.str), Reason: g.str()}
		if g.r.IntN(2) == 0 {
			r.Identifier = &canon.Identifier{Type: canon.IDType(g.str()), Value: g.str()}
		}
		if g.r.IntN(2) == 0 {
			r.Evidence = &canon.Evidence{Channel: canon.Channel(g.str()), MessageID: g.str(), Time: g.time(), Trust: canon.Trust(g.r.IntN(5))}
		}
		return r
	})
	in.Founders = genMap(g, g.str)
	return in
}

// TestAppendProperty compares the hand-written encoders with marshal on
// random profiles, internal states and property maps. A failure names its
// seed: go test ./engine/store -run TestAppendProperty -seed N -v.
func TestAppendProperty(t *testing.T) {
	seeds := []uint64{*jsonencSeed}
	if *jsonencSeed == 0 {
		seeds = seeds[:0]
		for s := range uint64(*jsonencRuns) {
			seeds = append(seeds, s+1)
		}
	}
	var outcomes [numOutcomes]int
	for _, seed := range seeds {
		if err := appendPropertyRun(seed, &outcomes); err != nil {
			t.Fatalf("seed %d: %v\nreplay: go test ./engine/store -run TestAppendProperty -seed %d -v", seed, err, seed)
		}
	}
	t.Logf("byte for byte %d, decoded %d, refused %d, left to marshal %d", outcomes[outExact], outcomes[outDecoded], outcomes[outRefused], outcomes[outLeft])
	if len(seeds) >= 100 {
		for o, n := range outcomes {
			if n < 10 {
				t.Errorf("outcome %d only %d times: the generator misses cases", o, n)
			}
		}
	}
}

// appendPropertyRun checks the values of one seed, counting outcomes.
// Half the seeds make values marshal refuses or appendAny leaves to it;
// a third keep maps to one entry, so values compare byte for byte.
func appendPropertyRun(seed uint64, outcomes *[numOutcomes]int) error {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), bad: seed%2 == 0, small: seed%3 == 0}
	for i := range 4 {
		g.big = false
		p := g.profile()
		bigProfile := g.big
		o, err := checkEncoder(p, appendProfile, !bigProfile, !g.bad)
		if err != nil {
			return fmt.Errorf("profile %d: %w", i, err)
		}
		outcomes[o]++
		g.big = false
		in := g.internal()
		if o, err = checkEncoder(in, appendInternal, !g.big, true); err != nil {
			return fmt.Errorf("internal %d: %w", i, err)
		}
		outcomes[o]++
		if err := checkState(&profile.State{Profile: *p, Internal: *in}, !bigProfile && !g.big); err != nil {
			return fmt.Errorf("state %d: %w", i, err)
		}
		g.big = false
		m := g.anyMap(4)
		if o, err = checkEncoder(m, appendAnyObject, !g.big, !g.bad); err != nil {
			return fmt.Errorf("map %d: %w", i, err)
		}
		outcomes[o]++
	}
	return nil
}

// checkState compares encodeState with what it did before: marshal each
// part and join them, errors included.
func checkState(st *profile.State, exact bool) error {
	state, prof, err := encodeState(st)
	wantProf, err1 := marshal(&st.Profile)
	internal, err2 := marshal(&st.Internal)
	switch {
	case err1 != nil || err2 != nil:
		if err == nil {
			return fmt.Errorf("encodeState succeeds where marshal fails (%v, %v)", err1, err2)
		}
		// Which refused value marshal reports first depends on map
		// order, so only the prefix is compared.
		if !strings.HasPrefix(err.Error(), "store: encode profile: ") {
			return fmt.Errorf("encodeState fails with %v, marshal with %v", err, cmpErr(err1, err2))
		}
		return nil
	case err != nil:
		return fmt.Errorf("encodeState: %w", err)
	}
	if err := sameAsMarshal(prof, wantProf, exact); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	// The profile's JSON may change member order between the two encodings
	// (exact or not), so the state compares decoded unless exact.
	return sameAsMarshal(state, joinObjects(wantProf, internal), exact)
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// FuzzAppendAny feeds values encoding/json decodes (UseNumber), and a
// string with any bytes, to appendAny and marshal.
func FuzzAppendAny(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x<y>&z",true,null,{"b":{}}],"c":[]}`), "k\u2028\xff")
	f.Add([]byte(`"\u0008\u000c\u007f\ud800"`), "")
	f.Add([]byte(`[1e400, -0, 0.0000001, 1E-7]`), "\x00")
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		v, err := decodeNumbers(data)
		if err != nil {
			return
		}
		for _, v := range []any{v, map[string]any{s: []any{v, s, &s}}, map[string]string{s: s}} {
			if _, err := checkEncoder(v, appendAny, smallMaps(v), true); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// smallMaps reports whether no map in v has more than one entry.
func smallMaps(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if len(v) > 1 {
			return false
		}
		for _, e := range v {
			if !smallMaps(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !smallMaps(e) {
				return false
			}
		}
	case map[string]string:
		return len(v) <= 1
	}
	return true
}

// TestAppendKnowsEveryField lists the JSON members of the structs the
// hand-written encoders write: a member added to one needs adding to its
// encoder (jsonenc.go) and here. The random values of TestAppendProperty
// miss an omitempty member the generator does not set.
func TestAppendKnowsEveryField(t *testing.T) {
	for typ, want := range map[reflect.Type]string{
		reflect.TypeFor[canon.Profile]():           "profile_id identity_level identifiers traits trait_sources,omitempty computed consent groups,omitempty merged_from,omitempty version updated_at",
		reflect.TypeFor[canon.ProfileIdentifier](): "type value trust first_seen",
		reflect.TypeFor[canon.TraitSource]():       "time channel verified,omitempty",
		reflect.TypeFor[canon.ConsentState]():      "value time source",
		reflect.TypeFor[canon.Computed](): "first_seen last_seen channels events_by_channel order_count total_spend return_total refund_count " +
			"refund_total tickets_opened avg_csat csat_sum csat_count devices last_channel lifecycle_stage lifecycle,omitempty",
		reflect.TypeFor[profile.Internal](): "comp created first_orders,omitempty conflicts,omitempty founder,omitempty founders,omitempty",
		reflect.TypeFor[canon.LogRecord]():  "type profile_id others,omitempty identifier,omitempty reason,omitempty evidence,omitempty",
		reflect.TypeFor[canon.Identifier](): "type value",
		reflect.TypeFor[canon.Evidence]():   "channel message_id time trust",
	} {
		var tags []string
		for f := range typ.Fields() {
			tags = append(tags, f.Tag.Get("json"))
		}
		if got := strings.Join(tags, " "); got != want {
			t.Errorf("%v's members are now\n  %s\nnot\n  %s\nupdate its encoder in jsonenc.go", typ, got, want)
		}
	}
}

// TestAppendMarshalString holds appendMarshalString to marshal's bytes,
// and records where appendJSONString's differ (they decode the same).
func TestAppendMarshalString(t *testing.T) {
	for _, c := range []struct {
		in, want, appendJSON string
	}{
		{"plain", `"plain"`, ""},
		{`q"b\`, `"q\"b\\"`, ""},
		{"<a>&", `"\u003ca\u003e\u0026"`, `"<a>&"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`, `"\u0008\u000c\n\r\t"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f\"", ""},
		{"\u2028\u2029", `"\u2028\u2029"`, "\"\u2028\u2029\""},
		{"bad\xff\xc3", `"bad\ufffd\ufffd"`, ""},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`, ""}, // a surrogate, byte by byte
		{"\ufffdé𝄞\u00a0", "\"\ufffdé𝄞\u00a0\"", ""},
	} {
		got := appendMarshalString(nil, c.in)
		want, err := marshal(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want || string(want) != c.want {
			t.Errorf("%q: appendMarshalString %s, marshal %s, want %s", c.in, got, want, c.want)
		}
		appendJSON := c.appendJSON
		if appendJSON == "" {
			appendJSON = c.want
		}
		if got := appendJSONString(nil, c.in); string(got) != appendJSON {
			t.Errorf("%q: appendJSONString %s, want %s", c.in, got, appendJSON)
		}
	}
}

// TestAppendEdgeCases holds the encoders to marshal's bytes where the two
// were most likely to part: nil against empty, the zero time, floats,
// numbers, amounts, and values marshal refuses.
func TestAppendEdgeCases(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("", -(3*3600+30*60+15)))
	profiles := map[string]*canon.Profile{
		"zero": {},
		"empty": {Identifiers: []canon.ProfileIdentifier{}, Traits: map[string]any{}, TraitSources: map[string]canon.TraitSource{},
			Consent: map[string]canon.ConsentState{}, Groups: []string{}, MergedFrom: []string{},
			Computed: canon.Computed{Channels: []canon.Channel{}, EventsByChannel: map[canon.Channel]int64{},
				TotalSpend: canon.Amounts{}, Lifecycle: map[string]time.Time{}}},
		"set": {ID: "p<1>", Level: canon.VerifiedUser, Version: math.MaxUint64, UpdatedAt: at,
			Identifiers:  []canon.ProfileIdentifier{{Type: canon.Email, Value: "a&b@c.io", Trust: 0, FirstSeen: at}},
			Traits:       map[string]any{"n": []any{stdjson.Number(""), 1e21, 1e-7, math.Copysign(0, -1), 100.0, (*string)(nil)}},
			TraitSources: map[string]canon.TraitSource{"n": {Time: at, Channel: canon.CIAM, Verified: true}},
			Consent:      map[string]canon.ConsentState{"sms": {Value: true, Source: "api"}},
			Groups:       []string{"g"}, MergedFrom: []string{"old"},
			Computed: canon.Computed{AvgCSAT: 4.333333333333333, Devices: -1,
				TotalSpend: canon.Amounts{"EUR": -1}, ReturnTotal: canon.Amounts{"U\u2028": 1_000_000},
				RefundTotal: canon.Amounts{"X": math.MaxInt64}, Lifecycle: map[string]time.Time{"lead": {}}}},
	}
	for name, p := range profiles {
		if _, err := checkEncoder(p, appendProfile, true, true); err != nil {
			t.Errorf("profile %s: %v", name, err)
		}
	}
	refused := map[string]*canon.Profile{
		"year 10000":    {UpdatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"offset 24h":    {Computed: canon.Computed{FirstSeen: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -24*3600))}},
		"NaN":           {Computed: canon.Computed{AvgCSAT: math.NaN()}},
		"min micros":    {Computed: canon.Computed{RefundTotal: canon.Amounts{"EUR": math.MinInt64}}},
		"bad number":    {Traits: map[string]any{"n": stdjson.Number("01")}},
		"infinite":      {Traits: map[string]any{"n": []any{math.Inf(-1)}}},
		"lifecycle -1y": {Computed: canon.Computed{Lifecycle: map[string]time.Time{"x": time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	}
	for name, p := range refused {
		if _, ok := appendProfile(nil, p); ok {
			t.Errorf("profile %s: written, marshal refuses it", name)
		}
		if err := checkState(&profile.State{Profile: *p}, true); err != nil {
			t.Errorf("state %s: %v", name, err)
		}
	}
	internals := map[string]*profile.Internal{
		"zero":  {},
		"empty": {FirstOrders: []time.Time{}, Conflicts: []canon.LogRecord{}, Founders: map[string]string{}},
		"set": {Comp: math.MaxUint64, Created: 1, Founder: "email\x00a@b", FirstOrders: []time.Time{{}, at},
			Founders: map[string]string{"prf_1": "phone\x00+33"},
			Conflicts: []canon.LogRecord{{Type: canon.LogConflict, ProfileID: "p", Others: []string{}},
				{Type: canon.LogConflict, ProfileID: "p", Others: []string{"q"}, Identifier: &canon.Identifier{Type: canon.Email, Value: "<x>"},
					Reason: "limit", Evidence: &canon.Evidence{Channel: canon.Web, MessageID: "m", Time: at, Trust: canon.Asserted}}}},
	}
	for name, in := range internals {
		if _, err := checkEncoder(in, appendInternal, true, true); err != nil {
			t.Errorf("internal %s: %v", name, err)
		}
	}
	if _, ok := appendInternal(nil, &profile.Internal{FirstOrders: []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}); ok {
		t.Error("internal with a year 10000 order: written, marshal refuses it")
	}
}

// TestAppendFloat holds appendFloat to marshal across float formats.
func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e-6, 9.99999e-7, 1e-7, -1e-7, 1e20, 1e21, 9.999999999999999e20,
		123456789.125, 1.5e300, 5e-324, math.MaxFloat64, -math.SmallestNonzeroFloat64, 12345678901234567890, 1e-10, 1e100} {
		got, ok := appendFloat(nil, f)
		want, err := marshal(f)
		if err != nil || !ok || string(got) != string(want) {
			t.Errorf("%v: appendFloat %s (%v), marshal %s (%v)", f, got, ok, want, err)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, ok := appendFloat(nil, f); ok {
			t.Errorf("%v: written, marshal refuses it", f)
		}
	}
}

// TestAppendMicros holds appendMicros to canon.FormatMicros.
func TestAppendMicros(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	vals := []int64{0, 1, -1, 10, 100_000, 999_999, 1_000_000, 1_000_001, -1_500_000, math.MaxInt64, math.MinInt64 + 1}
	for range 1000 {
		vals = append(vals, r.Int64()>>r.IntN(64)*int64(1-2*r.IntN(2)))
	}
	for _, v := range vals {
		if got, ok := appendMicros(nil, v); !ok || string(got) != canon.FormatMicros(v) {
			t.Fatalf("%d: appendMicros %s (%v), FormatMicros %s", v, got, ok, canon.FormatMicros(v))
		}
	}
	if _, err := marshal(canon.Amounts{"EUR": math.MinInt64}); err == nil {
		t.Error("marshal writes math.MinInt64 micros; appendMicros refuses them")
	}
}

// TestAppendAnyFallbacks checks the values appendAny leaves to marshal:
// types it does not know, invalid numbers, and nesting past maxAnyDepth.
func TestAppendAnyFallbacks(t *testing.T) {
	deep := any("x")
	for range maxAnyDepth + 1 {
		deep = []any{deep}
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, v := range map[string]any{
		"uint8":       map[string]any{"n": uint8(1)},
		"[]string":    []any{[]string{"x"}},
		"struct":      struct{}{},
		"bad number":  stdjson.Number("1."),
		"deep":        deep,
		"cycle":       cyclic,
		"NaN in list": []any{1, math.NaN()},
	} {
		dst := []byte("keep")
		if got, ok := appendAny(dst, v); ok || string(got) != "keep" {
			t.Errorf("%s: appendAny = %q, %v; want dst back and false", name, got, ok)
		}
	}
	// Just within the bound, appendAny writes it.
	within := any("x")
	for range maxAnyDepth {
		within = []any{within}
	}
	if _, err := checkEncoder(within, appendAny, true, true); err != nil {
		t.Error(err)
	}
}

// TestEncodeEventFallsBack checks that an event whose properties
// appendAny leaves to marshal encodes as before, and that one marshal
// refuses fails as before.
func TestEncodeEventFallsBack(t *testing.T) {
	e := canon.Event{Channel: canon.Web, MessageID: "m", Kind: canon.KindTrack, Time: time.Unix(1e9, 0).UTC(),
		Props: map[string]any{"tags": []string{"<a>"}}, Traits: map[string]any{"n": uint16(7)}}
	enc, err := EncodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := marshal(e.Props)
	if !bytes.Equal(enc.Props, want) {
		t.Errorf("props %s, want %s", enc.Props, want)
	}
	whole, _ := marshal(&e)
	sameEvent(t, "event", enc.Stored, whole)
	e.GroupTraits = map[string]any{"x": math.Inf(1)}
	if _, err := EncodeEvent(&e); err == nil || !strings.Contains(err.Error(), "store: encode event group traits: ") {
		t.Errorf("EncodeEvent with an infinite group trait: %v", err)
	}
}

// realisticState is a profile of a customer seen on a few channels: about
// what the writer encodes most.
func realisticState() *profile.State {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	st := profile.New("prf_01HZX3K9Q2M8N7B6V5C4X3Z2Y1", 123456, 789)
	st.Level = canon.Registered
	st.Identifiers = []canon.ProfileIdentifier{
		{Type: canon.UserID, Value: "u-1234567", Trust: canon.Verified, FirstSeen: at},
		{Type: canon.Email, Value: "jane.doe@example.com", Trust: canon.Verified, FirstSeen: at},
		{Type: canon.Phone, Value: "+33612345678", Trust: canon.Asserted, FirstSeen: at},
		{Type: canon.AnonymousID, Value: "0d9f7a3e-1c2b-4e5f-8a9b-123456789abc", Trust: canon.Observed, FirstSeen: at},
	}
	st.Traits = map[string]any{"first_name": "Jane", "last_name": "Doe", "plan": "gold", "age": stdjson.Number("34")}
	st.TraitSources = map[string]canon.TraitSource{"first_name": {Time: at, Channel: canon.CIAM, Verified: true}, "plan": {Time: at, Channel: canon.Web}}
	st.Consent = map[string]canon.ConsentState{"email_marketing": {Value: true, Time: at, Source: "web"}, "sms": {Time: at, Source: "api"}}
	st.Groups = []string{"acme"}
	st.Version = 42
	st.UpdatedAt = at
	c := &st.Computed
	c.FirstSeen, c.LastSeen = at.Add(-90*24*time.Hour), at
	c.Channels = []canon.Channel{canon.Web, canon.POS, canon.CIAM}
	c.EventsByChannel = map[canon.Channel]int64{canon.Web: 120, canon.POS: 3, canon.CIAM: 2}
	c.OrderCount, c.TotalSpend = 3, canon.Amounts{"EUR": 259_970_000}
	c.ReturnTotal = canon.Amounts{"EUR": 19_990_000}
	c.RefundCount, c.RefundTotal = 1, canon.Amounts{"EUR": 19_990_000}
	c.AvgCSAT, c.CSATSum, c.CSATCount, c.Devices = 4.5, 9, 2, 2
	c.LastChannel, c.LifecycleStage = canon.Web, canon.StageLoyal
	c.Lifecycle = map[string]time.Time{}
	for i, s := range canon.Stages {
		c.Lifecycle[s] = at.Add(time.Duration(i-5) * 24 * time.Hour)
	}
	st.FirstOrders = []time.Time{at.Add(-60 * 24 * time.Hour), at.Add(-30 * 24 * time.Hour), at}
	st.Founder = "email\x00jane.doe@example.com"
	return st
}

// BenchmarkEncodeState encodes a realistic profile state as the writer
// does (encodeState), against marshal of each part and joinObjects (what
// it did before).
//
//	go test -run '^$' -bench 'EncodeState|EncodeProps' -benchmem -count 3 ./engine/store/
func BenchmarkEncodeState(b *testing.B) {
	st := realisticState()
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			prof, err := marshal(&st.Profile)
			if err != nil {
				b.Fatal(err)
			}
			internal, err := marshal(&st.Internal)
			if err != nil {
				b.Fatal(err)
			}
			_ = joinObjects(prof, internal)
		}
	})
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := encodeState(st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncodeProps encodes a web event's properties, with marshal and
// with appendAny into a new buffer (EncodeEvent's copy of its scratch).
func BenchmarkEncodeProps(b *testing.B) {
	props := map[string]any{"product_id": "sku-123", "price": 19.99, "currency": "EUR", "category": "shoes",
		"quantity": stdjson.Number("2"), "tags": []any{"sale", "summer"},
		"context": map[string]any{"ip": "192.0.2.1", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}}
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := marshal(props); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand", func(b *testing.B) {
		scratch := make([]byte, 0, 1024)
		for b.Loop() {
			out, ok := appendAny(scratch[:0], props)
			if !ok {
				b.Fatal("not written")
			}
			_ = append(make([]byte, 0, len(out)), out...)
		}
	})
}
