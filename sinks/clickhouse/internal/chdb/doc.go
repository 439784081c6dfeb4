// Package chdb runs SQL on a current ClickHouse engine in process, through
// chDB's C API (libchdb.so from the npm package that deploy/chdb.sh
// fetches). It exists for the chdb-tagged tests, which check the modern
// schema dialect and the analyst queries on ClickHouse 26; without the
// chdb build tag it is empty, and the product never links it.
package chdb
