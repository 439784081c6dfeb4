// Package parquet owns the Parquet snapshot export: profiles and the
// identity map written through Arrow as two Parquet files that any
// standard reader (Spark, DuckDB, pandas, ClickHouse) opens.
package parquet
