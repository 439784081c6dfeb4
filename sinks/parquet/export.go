package parquet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/spinecdp/spine/schemas/canon"
)

// Snapshot is a consistent view of the state to export. EachProfile and
// EachMapping call fn once per row; fn must not keep its argument.
type Snapshot interface {
	EachProfile(ctx context.Context, fn func(p *canon.Profile) error) error
	EachMapping(ctx context.Context, fn func(m canon.Mapping) error) error
}

// File names in the export directory.
const (
	ProfilesFile    = "profiles.parquet"
	IdentityMapFile = "identity_map.parquet"
)

// rowGroup bounds the rows held in memory before they are flushed.
const rowGroup = 16_384

// Result counts what Export wrote.
type Result struct {
	Profiles int
	Mappings int
}

// ProfileSchema is the Arrow schema of profiles.parquet: typed columns for
// the values analysts use most, plus the whole profile as JSON.
var ProfileSchema = arrow.NewSchema([]arrow.Field{
	{Name: "profile_id", Type: arrow.BinaryTypes.String},
	{Name: "identity_level", Type: arrow.BinaryTypes.String},
	{Name: "version", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "updated_at", Type: arrow.FixedWidthTypes.Timestamp_ms},
	{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "email", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "phone", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "first_seen", Type: arrow.FixedWidthTypes.Timestamp_ms, Nullable: true},
	{Name: "last_seen", Type: arrow.FixedWidthTypes.Timestamp_ms, Nullable: true},
	{Name: "channels", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	{Name: "order_count", Type: arrow.PrimitiveTypes.Int64},
	{Name: "lifecycle_stage", Type: arrow.BinaryTypes.String},
	{Name: "identifiers", Type: arrow.PrimitiveTypes.Int32},
	{Name: "profile_json", Type: arrow.BinaryTypes.String},
}, nil)

// MappingSchema is the Arrow schema of identity_map.parquet.
var MappingSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id_type", Type: arrow.BinaryTypes.String},
	{Name: "id_value", Type: arrow.BinaryTypes.String},
	{Name: "profile_id", Type: arrow.BinaryTypes.String},
}, nil)

// Export writes profiles.parquet and identity_map.parquet into dir. Files
// are written under temporary names and renamed when complete, so a reader
// never sees half a file.
func Export(ctx context.Context, dir string, s Snapshot) (Result, error) {
	var res Result
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("parquet: %w", err)
	}
	err := writeFile(filepath.Join(dir, ProfilesFile), ProfileSchema, func(b *array.RecordBuilder, flush func() error) error {
		return s.EachProfile(ctx, func(p *canon.Profile) error {
			if err := appendProfile(b, p); err != nil {
				return err
			}
			res.Profiles++
			return flush()
		})
	})
	if err != nil {
		return res, fmt.Errorf("parquet: profiles: %w", err)
	}
	err = writeFile(filepath.Join(dir, IdentityMapFile), MappingSchema, func(b *array.RecordBuilder, flush func() error) error {
		return s.EachMapping(ctx, func(m canon.Mapping) error {
			b.Field(0).(*array.StringBuilder).Append(string(m.Identifier.Type))
			b.Field(1).(*array.StringBuilder).Append(m.Identifier.Value)
			b.Field(2).(*array.StringBuilder).Append(m.ProfileID)
			res.Mappings++
			return flush()
		})
	})
	if err != nil {
		return res, fmt.Errorf("parquet: identity map: %w", err)
	}
	return res, nil
}

// writeFile runs fill with a record builder; flush writes a row group when
// the builder holds rowGroup rows.
func writeFile(path string, schema *arrow.Schema, fill func(b *array.RecordBuilder, flush func() error) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	props := pq.NewWriterProperties(pq.WithCompression(compress.Codecs.Zstd), pq.WithCreatedBy("spine"))
	fw, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	write := func() error {
		rec := b.NewRecord()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		return fw.Write(rec)
	}
	flush := func() error {
		if b.Field(0).Len() >= rowGroup {
			return write()
		}
		return nil
	}
	if err := fill(b, flush); err != nil {
		return errors.Join(err, fw.Close())
	}
	if err := write(); err != nil {
		return errors.Join(err, fw.Close())
	}
	if err := fw.Close(); err != nil { // also closes f
		return err
	}
	return os.Rename(tmp, path)
}

func appendProfile(b *array.RecordBuilder, p *canon.Profile) error {
	js, err := json.Marshal(p)
	if err != nil {
		return err
	}
	str := func(i int, v string, ok bool) {
		if ok {
			b.Field(i).(*array.StringBuilder).Append(v)
		} else {
			b.Field(i).AppendNull()
		}
	}
	ts := func(i int, t time.Time) {
		if t.IsZero() {
			b.Field(i).AppendNull()
		} else {
			b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMilli()))
		}
	}
	str(0, p.ID, true)
	str(1, string(p.Level), true)
	b.Field(2).(*array.Uint64Builder).Append(p.Version)
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(p.UpdatedAt.UnixMilli()))
	for i, t := range []canon.IDType{canon.UserID, canon.Email, canon.Phone} {
		v, ok := p.Identifier(t)
		str(4+i, v, ok)
	}
	ts(7, p.Computed.FirstSeen)
	ts(8, p.Computed.LastSeen)
	lb := b.Field(9).(*array.ListBuilder)
	lb.Append(true)
	for _, ch := range p.Computed.Channels {
		lb.ValueBuilder().(*array.StringBuilder).Append(string(ch))
	}
	b.Field(10).(*array.Int64Builder).Append(p.Computed.OrderCount)
	str(11, p.Computed.LifecycleStage, true)
	b.Field(12).(*array.Int32Builder).Append(int32(len(p.Identifiers)))
	str(13, strings.ToValidUTF8(string(js), "\uFFFD"), true)
	return nil
}
