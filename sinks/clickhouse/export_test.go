package clickhouse

// Internals the external tests check against a real server.
var (
	ValueHash = valueHash
	Quote     = quote
)
