package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// files holds every contract file: the ClickHouse migrations and analyst
// queries, the JSON Schemas of the channels and of the canonical event, and
// the API spec.
//
//go:embed clickhouse/*.sql queries/*.sql queries/README.md json/*.json openapi.yaml
var files embed.FS

// Files returns the embedded contract files, by their path in this
// directory: "json/web.schema.json", "openapi.yaml", "clickhouse/0001_events.sql".
func Files() fs.FS { return files }

// ReadFile returns one embedded contract file (see Files).
func ReadFile(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	return b, nil
}

// Dialect names a ClickHouse SQL dialect the migrations expand to.
type Dialect string

// The dialects.
const (
	// Modern is current ClickHouse (25.8+): LowCardinality, DateTime64(3).
	Modern Dialect = "modern"
	// Legacy is ClickHouse 18.16, the server Debian 12 packages: plain
	// String for low-cardinality columns, and times as DateTime plus a
	// UInt16 of milliseconds.
	Legacy Dialect = "legacy"
)

// Valid reports whether d is a known dialect.
func (d Dialect) Valid() bool { return d == Modern || d == Legacy }

// TimeColumns lists the columns that the placeholder {{Time col}} becomes:
// col in Modern; col and col_ms (the milliseconds) in Legacy. Writers use it
// to build column lists that match the expanded DDL.
func (d Dialect) TimeColumns(col string) []string {
	if d == Legacy {
		return []string{col, col + "_ms"}
	}
	return []string{col}
}

// expand is the one place the dialects differ. Keep it small: every entry
// here is a behaviour the legacy integration tests cannot check for Modern.
func (d Dialect) expand(name, arg string) (string, error) {
	switch {
	case name == "LowString" && arg == "":
		if d == Legacy {
			return "String", nil
		}
		return "LowCardinality(String)", nil
	case name == "Time" && arg != "":
		if d == Legacy {
			return arg + " DateTime('UTC'), " + arg + "_ms UInt16", nil
		}
		return arg + " DateTime64(3, 'UTC')", nil
	}
	return "", fmt.Errorf("unknown placeholder {{%s %s}}", name, arg)
}

// Migration is one schema change, ready to run on one dialect.
type Migration struct {
	Version int    // from the NNNN prefix; migrations apply in this order
	Name    string // file name without extension, e.g. "0001_events"
	SQL     string // expanded text; see Statements
}

// Statements splits the migration into the statements to execute one by
// one (the native protocol runs one statement per query). Statements end
// with a semicolon at the end of a line; lines starting with -- are comments.
func (m Migration) Statements() []string {
	var out []string
	var cur strings.Builder
	for line := range strings.SplitSeq(m.SQL, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

var (
	fileName    = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)
	placeholder = regexp.MustCompile(`\{\{\s*(\w+)(?:\s+(\w+))?\s*\}\}`)
)

// Migrations returns the ClickHouse migrations expanded for dialect d, in
// version order. An empty d means Modern.
func Migrations(d Dialect) ([]Migration, error) {
	if d == "" {
		d = Modern
	}
	if !d.Valid() {
		return nil, fmt.Errorf("schemas: unknown dialect %q", d)
	}
	entries, err := fs.ReadDir(files, "clickhouse")
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schemas: migration %s: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("schemas: migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		raw, err := files.ReadFile(path.Join("clickhouse", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
		var expandErr error
		sql := placeholder.ReplaceAllStringFunc(string(raw), func(s string) string {
			p := placeholder.FindStringSubmatch(s)
			r, err := d.expand(p[1], p[2])
			if err != nil && expandErr == nil {
				expandErr = err
			}
			return r
		})
		if expandErr != nil {
			return nil, fmt.Errorf("schemas: migration %s: %w", e.Name(), expandErr)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(e.Name(), ".sql"), SQL: sql})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Query is one documented analyst query from queries/. The queries read
// the tables of the migrations and run unchanged on both dialects.
type Query struct {
	Name string // file name without extension, e.g. "people"
	Doc  string // the leading comment, without the "-- " markers
	SQL  string // the statement, without a trailing semicolon
}

// Queries returns the analyst queries, by name.
func Queries() ([]Query, error) {
	entries, err := fs.ReadDir(files, "queries")
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	var out []Query
	for _, e := range entries {
		if path.Ext(e.Name()) != ".sql" {
			continue
		}
		raw, err := files.ReadFile(path.Join("queries", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
		q := Query{Name: strings.TrimSuffix(e.Name(), ".sql")}
		var doc []string
		lines := strings.Split(string(raw), "\n")
		i := 0
		for ; i < len(lines) && strings.HasPrefix(lines[i], "--"); i++ {
			doc = append(doc, strings.TrimSpace(strings.TrimPrefix(lines[i], "--")))
		}
		q.Doc = strings.Join(doc, "\n")
		q.SQL = strings.TrimSuffix(strings.TrimSpace(strings.Join(lines[i:], "\n")), ";")
		if q.SQL == "" {
			return nil, fmt.Errorf("schemas: query %s is empty", e.Name())
		}
		out = append(out, q)
	}
	return out, nil
}
