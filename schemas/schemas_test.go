package schemas_test

import (
	"strings"
	"testing"

	"github.com/spinecdp/spine/schemas"
)

func TestMigrationsExpand(t *testing.T) {
	for _, d := range []schemas.Dialect{schemas.Modern, schemas.Legacy} {
		ms, err := schemas.Migrations(d)
		if err != nil {
			t.Fatalf("Migrations(%s): %v", d, err)
		}
		if len(ms) == 0 {
			t.Fatalf("Migrations(%s) is empty", d)
		}
		for i, m := range ms {
			if i > 0 && m.Version <= ms[i-1].Version {
				t.Errorf("Migrations(%s): %s after %s, want increasing versions", d, m.Name, ms[i-1].Name)
			}
			if strings.Contains(m.SQL, "{{") || strings.Contains(m.SQL, "}}") {
				t.Errorf("Migrations(%s): %s has a leftover placeholder", d, m.Name)
			}
			if len(m.Statements()) == 0 {
				t.Errorf("Migrations(%s): %s has no statements", d, m.Name)
			}
			if d != schemas.Legacy {
				continue
			}
			for _, banned := range []string{"DateTime64", "LowCardinality", "Map(", "JSON", "TTL", "CODEC", "Bool"} {
				// Comments may mention JSON; only the statements count.
				for _, s := range m.Statements() {
					if strings.Contains(s, banned) {
						t.Errorf("Migrations(legacy): %s contains %s, which 18.16 lacks", m.Name, banned)
					}
				}
			}
		}
	}
}

func TestMigrationsModernDefault(t *testing.T) {
	def, err := schemas.Migrations("")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := schemas.Migrations(schemas.Modern)
	if err != nil {
		t.Fatal(err)
	}
	if len(def) != len(mod) || def[0].SQL != mod[0].SQL {
		t.Errorf(`Migrations("") differs from Migrations(modern)`)
	}
	if !strings.Contains(mod[0].SQL, "LowCardinality(String)") || !strings.Contains(mod[0].SQL, "DateTime64(3, 'UTC')") {
		t.Errorf("Migrations(modern): %s lacks LowCardinality or DateTime64", mod[0].Name)
	}
	if _, err := schemas.Migrations("oracle"); err == nil {
		t.Errorf(`Migrations("oracle") = nil error, want unknown dialect`)
	}
}

func TestStatements(t *testing.T) {
	m := schemas.Migration{SQL: "-- a; comment\nCREATE TABLE a (x UInt8);\n\nALTER TABLE a\n    ADD COLUMN y UInt8;\n"}
	got := m.Statements()
	want := []string{"CREATE TABLE a (x UInt8)", "ALTER TABLE a\n    ADD COLUMN y UInt8"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Statements() = %q, want %q", got, want)
	}
}

func TestFiles(t *testing.T) {
	for _, name := range []string{"json/web.schema.json", "openapi.yaml", "clickhouse/0001_events.sql"} {
		b, err := schemas.ReadFile(name)
		if err != nil || len(b) == 0 {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want the file", name, len(b), err)
		}
	}
}
