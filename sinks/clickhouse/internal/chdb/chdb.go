//go:build chdb

package chdb

/*
#cgo LDFLAGS: -lchdb
#include <stdlib.h>
#include <stddef.h>

// The subset of chdb.h (chDB 3.x C API) used here; the npm package ships
// the library without its header.
typedef struct chdb_connection_ { void *internal_data; } *chdb_connection;
typedef struct chdb_result_ { void *internal_data; } chdb_result;

extern chdb_connection *chdb_connect(int argc, char **argv);
extern void chdb_close_conn(chdb_connection *conn);
extern chdb_result *chdb_query(chdb_connection conn, const char *query, const char *format);
extern char *chdb_result_buffer(chdb_result *result);
extern size_t chdb_result_length(chdb_result *result);
extern const char *chdb_result_error(chdb_result *result);
extern void chdb_destroy_query_result(chdb_result *result);
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Session is one in-process ClickHouse session whose data lives in a
// directory. chDB allows one open session per process; it is not safe for
// concurrent use.
type Session struct {
	conn *C.chdb_connection
}

// Open starts a session with its data in dir.
func Open(dir string) (*Session, error) {
	args := []string{"clickhouse", "--path=" + dir}
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = C.CString(a)
	}
	defer func() {
		for _, p := range argv {
			C.free(unsafe.Pointer(p))
		}
	}()
	conn := C.chdb_connect(C.int(len(args)), &argv[0])
	if conn == nil || *conn == nil {
		return nil, errors.New("chdb: connect failed")
	}
	return &Session{conn: conn}, nil
}

// Query runs one statement and returns its output in format (e.g.
// "TabSeparated"); statements without output return "".
func (s *Session) Query(q, format string) (string, error) {
	cq, cf := C.CString(q), C.CString(format)
	defer C.free(unsafe.Pointer(cq))
	defer C.free(unsafe.Pointer(cf))
	res := C.chdb_query(*s.conn, cq, cf)
	if res == nil {
		return "", errors.New("chdb: query returned no result")
	}
	defer C.chdb_destroy_query_result(res)
	if e := C.chdb_result_error(res); e != nil {
		return "", fmt.Errorf("chdb: %s", C.GoString(e))
	}
	n := C.chdb_result_length(res)
	if n == 0 {
		return "", nil
	}
	return C.GoStringN(C.chdb_result_buffer(res), C.int(n)), nil
}

// Close ends the session.
func (s *Session) Close() {
	if s.conn != nil {
		C.chdb_close_conn(s.conn)
		s.conn = nil
	}
}
