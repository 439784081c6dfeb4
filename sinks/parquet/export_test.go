package parquet_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/parquet"
)

type snapshot struct {
	profiles []canon.Profile
	mappings []canon.Mapping
}

func (s *snapshot) EachProfile(_ context.Context, fn func(*canon.Profile) error) error {
	for i := range s.profiles {
		if err := fn(&s.profiles[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshot) EachMapping(_ context.Context, fn func(canon.Mapping) error) error {
	for _, m := range s.mappings {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func readTable(t *testing.T, path string) map[string][]string {
	t.Helper()
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	out := map[string][]string{}
	for i := range int(tbl.NumCols()) {
		col := tbl.Column(i)
		for _, chunk := range col.Data().Chunks() {
			for j := range chunk.Len() {
				out[col.Name()] = append(out[col.Name()], chunk.(interface{ ValueStr(int) string }).ValueStr(j))
			}
		}
	}
	return out
}

func TestExportRoundTrip(t *testing.T) {
	// More rows than one row group, so flushing is exercised.
	s := &snapshot{}
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20_000 {
		p := canon.Profile{
			ID: fmt.Sprintf("prf_%05d", i), Level: canon.Registered, Version: uint64(i + 1), UpdatedAt: t0,
			Identifiers: []canon.ProfileIdentifier{{Type: canon.UserID, Value: fmt.Sprint("u", i)}, {Type: canon.Email, Value: fmt.Sprintf("p%d@shop.io", i)}},
			Computed:    canon.Computed{FirstSeen: t0, LastSeen: t0.Add(time.Hour), Channels: []canon.Channel{canon.Web, canon.POS}, OrderCount: int64(i % 7), LifecycleStage: canon.StageCustomer},
		}
		if i%2 == 0 {
			p.Identifiers = p.Identifiers[:1] // no email: a null column value
		}
		s.profiles = append(s.profiles, p)
		s.mappings = append(s.mappings, canon.Mapping{Identifier: p.Identifiers[0].Identifier(), ProfileID: p.ID})
	}
	dir := t.TempDir()
	res, err := parquet.Export(t.Context(), dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profiles != 20_000 || res.Mappings != 20_000 {
		t.Fatalf("Export = %+v", res)
	}
	prof := readTable(t, filepath.Join(dir, parquet.ProfilesFile))
	if n := len(prof["profile_id"]); n != 20_000 {
		t.Fatalf("profiles.parquet has %d rows, want 20000", n)
	}
	if got := prof["email"][1]; got != "p1@shop.io" {
		t.Errorf("email[1] = %q", got)
	}
	if got := prof["email"][0]; got != "(null)" {
		t.Errorf("email[0] = %q, want null", got)
	}
	if got := prof["order_count"][6]; got != "6" {
		t.Errorf("order_count[6] = %q", got)
	}
	if got := prof["channels"][3]; got != `["web","pos"]` {
		t.Errorf("channels[3] = %q", got)
	}
	ids := readTable(t, filepath.Join(dir, parquet.IdentityMapFile))
	if got := ids["profile_id"][42]; got != "prf_00042" || ids["id_type"][42] != "user_id" {
		t.Errorf("identity_map row 42 = %s %s", ids["id_type"][42], got)
	}
}
