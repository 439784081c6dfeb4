package httpapi

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
	"gopkg.in/yaml.v3"
)

const specPath = "../../schemas/openapi.yaml"

var specMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

type spec struct {
	OpenAPI    string                                  `yaml:"openapi"`
	Paths      map[string]map[string]specOperation     `yaml:"paths"`
	Components struct{ Schemas map[string]specSchema } `yaml:"components"`
}

type specOperation struct {
	Scope     string               `yaml:"x-scope"`
	Security  []map[string]any     `yaml:"security"`
	Responses map[string]yaml.Node `yaml:"responses"`
}

type specSchema struct {
	Ref        string                `yaml:"$ref"`
	Properties map[string]specSchema `yaml:"properties"`
	Items      *specSchema           `yaml:"items"`
	Additional any                   `yaml:"additionalProperties"`
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("parse %s: %v", specPath, err)
	}
	if !strings.HasPrefix(s.OpenAPI, "3.0") {
		t.Fatalf("openapi = %q, want 3.0.x", s.OpenAPI)
	}
	return s
}

// specOperations maps "METHOD /path" to the operation, matching the mux's
// pattern syntax (both use {name} wildcards).
func specOperations(s spec) map[string]specOperation {
	out := map[string]specOperation{}
	for path, item := range s.Paths {
		for _, m := range specMethods {
			if op, ok := item[m]; ok {
				out[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return out
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	ops := specOperations(loadSpec(t))
	s := newTestServer(t, true, nil, nil)
	for pattern, scope := range s.scopes {
		op, ok := ops[pattern]
		if !ok {
			t.Errorf("route %s is not in %s", pattern, specPath)
			continue
		}
		if op.Scope != string(scope) {
			t.Errorf("%s: x-scope = %q, want %q", pattern, op.Scope, scope)
		}
		if scope == "" && (op.Security == nil || len(op.Security) != 0) {
			t.Errorf("%s: needs no auth, want security: [] in the spec", pattern)
		}
	}
	for key := range ops {
		if _, ok := s.scopes[key]; !ok {
			t.Errorf("%s is in %s but not a route", key, specPath)
		}
	}
}

// TestOpenAPIStatusCodes runs every endpoint case and checks that each
// status the handler answered is documented for its operation.
func TestOpenAPIStatusCodes(t *testing.T) {
	ops := specOperations(loadSpec(t))
	seen := map[string]map[int]bool{}
	for _, c := range endpointCases() {
		t.Run(c.name, func(t *testing.T) {
			pattern, code := runCase(t, c)
			if pattern == "" {
				return // answered by the mux itself: 404 or 405, described in info
			}
			if seen[pattern] == nil {
				seen[pattern] = map[int]bool{}
			}
			seen[pattern][code] = true
		})
	}
	// Every successful authenticated case again, with codes that need a
	// set-up of their own: the engine failing (500) and the token's bucket
	// empty (429).
	for _, c := range endpointCases() {
		if c.want != 200 || c.secret == "" {
			continue
		}
		t.Run(c.name+"/engine fails", func(t *testing.T) {
			s := newTestServer(t, c.full, nil, nil)
			s.eng.fail = errors.New("fake: disk on fire")
			r := request(c.method, c.target, c.body, c.secret)
			_, pattern := s.mux.Handler(r)
			if w := s.do(r); w.Code != 500 {
				t.Errorf("%s with a failing engine = %d, want 500", pattern, w.Code)
			}
			seen[pattern][500] = true
		})
		t.Run(c.name+"/rate limited", func(t *testing.T) {
			s := newTestServer(t, c.full, nil, func(cfg *Config) { cfg.RateLimit = RateLimit{PerSecond: 1e-9, Burst: 1} })
			s.do(request(c.method, c.target, c.body, c.secret))
			r := request(c.method, c.target, c.body, c.secret)
			_, pattern := s.mux.Handler(r)
			if w := s.do(r); w.Code != 429 {
				t.Errorf("%s past the burst = %d, want 429", pattern, w.Code)
			}
			seen[pattern][429] = true
		})
	}
	for pattern, codes := range seen {
		op := ops[pattern]
		for code := range codes {
			if _, ok := op.Responses[strconv.Itoa(code)]; !ok {
				t.Errorf("%s answered %d, which %s does not document", pattern, code, specPath)
			}
		}
	}
}

// TestOpenAPIProfileSchema checks that every JSON field canon.Profile
// produces is a property of the spec's Profile schema, recursively.
func TestOpenAPIProfileSchema(t *testing.T) {
	s := loadSpec(t)
	t0 := time.Unix(0, 0).UTC()
	p := canon.Profile{
		ID: "p", Level: canon.Registered,
		Identifiers:  []canon.ProfileIdentifier{{Type: canon.Email, Value: "v", Trust: canon.Verified, FirstSeen: t0}},
		Traits:       map[string]any{"x": 1},
		TraitSources: map[string]canon.TraitSource{"x": {Time: t0, Channel: canon.Web, Verified: true}},
		Computed: canon.Computed{
			Channels: []canon.Channel{canon.Web}, EventsByChannel: map[canon.Channel]int64{canon.Web: 1},
			TotalSpend: canon.Amounts{"EUR": 1}, Lifecycle: map[string]time.Time{"lead": t0},
		},
		Consent:    map[string]canon.ConsentState{"sms": {Value: true, Time: t0, Source: "api"}},
		Groups:     []string{"g"},
		MergedFrom: []string{"q"},
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, s, "Profile", s.Components.Schemas["Profile"], doc)
	// And the other way: no property the struct cannot produce.
	for name := range s.Components.Schemas["Profile"].Properties {
		if _, ok := doc[name]; !ok {
			t.Errorf("Profile schema property %q is not a field of canon.Profile", name)
		}
	}
	if n := reflect.TypeFor[canon.Profile]().NumField(); n != len(doc) {
		t.Errorf("canon.Profile has %d fields but the fixture fills %d: fill the new ones", n, len(doc))
	}
}

func checkSchema(t *testing.T, s spec, path string, sc specSchema, v any) {
	t.Helper()
	if sc.Ref != "" {
		name := strings.TrimPrefix(sc.Ref, "#/components/schemas/")
		ref, ok := s.Components.Schemas[name]
		if !ok {
			t.Errorf("%s: dangling $ref %s", path, sc.Ref)
			return
		}
		sc = ref
	}
	switch v := v.(type) {
	case map[string]any:
		if len(sc.Properties) == 0 {
			return // a map (additionalProperties): keys are data, not fields
		}
		for k, sub := range v {
			ps, ok := sc.Properties[k]
			if !ok {
				t.Errorf("%s.%s is in canon's JSON but not in the spec", path, k)
				continue
			}
			checkSchema(t, s, path+"."+k, ps, sub)
		}
	case []any:
		if sc.Items != nil {
			for _, e := range v {
				checkSchema(t, s, path+"[]", *sc.Items, e)
			}
		}
	}
}

func TestOpenAPIRefsResolve(t *testing.T) {
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i++ {
			if n.Kind == yaml.MappingNode && i%2 == 0 && n.Content[i].Value == "$ref" {
				ref := n.Content[i+1].Value
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = generic
				for _, p := range parts {
					m, ok := cur.(map[string]any)
					if !ok {
						cur = nil
						break
					}
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
}
